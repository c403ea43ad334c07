package dev.tether.pipeline;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.NoSuchElementException;

/** JSON Lines: one shared mapper, and streaming reads that know each record's line number. */
public final class Jsonl {
    public static final ObjectMapper JSON = new ObjectMapper();

    private Jsonl() {}

    /** One line of a JSONL file: its 1-based number and either the object or why it is not one. */
    public record Line(int number, ObjectNode object, String error) {
        public boolean ok() {
            return object != null;
        }
    }

    /** Reads lazily: a million-line file costs one line of memory at a time. Blank lines are skipped. */
    public static Iterable<Line> read(Path file) {
        return () -> new Iterator<>() {
            private final BufferedReader reader = open(file);
            private Line next = advance();
            private int number;

            private Line advance() {
                try {
                    String text;
                    while ((text = reader.readLine()) != null) {
                        number++;
                        if (!text.isBlank()) {
                            return parse(number, text);
                        }
                    }
                    reader.close();
                    return null;
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot read " + file, e);
                }
            }

            @Override
            public boolean hasNext() {
                return next != null;
            }

            @Override
            public Line next() {
                if (next == null) {
                    throw new NoSuchElementException();
                }
                Line current = next;
                next = advance();
                return current;
            }
        };
    }

    static Line parse(int number, String text) {
        try {
            JsonNode node = JSON.readTree(text);
            if (node instanceof ObjectNode object) {
                return new Line(number, object, null);
            }
            return new Line(number, null, "expected a JSON object, found " + (node == null ? "nothing" : node.getNodeType().toString().toLowerCase()));
        } catch (JsonProcessingException e) {
            return new Line(number, null, "not valid JSON (" + e.getOriginalMessage() + ")");
        }
    }

    private static BufferedReader open(Path file) {
        try {
            return Files.newBufferedReader(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    public static String write(JsonNode node) {
        try {
            return JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
