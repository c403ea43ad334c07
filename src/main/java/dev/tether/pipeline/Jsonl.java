package dev.tether.pipeline;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
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

    /**
     * Reads lazily: a million-line file costs one line of memory at a time. Blank lines are skipped. A line that
     * is not valid UTF-8 is a bad line like any other (its number and what is wrong), not a failure of the whole
     * read; a UTF-8 byte order mark at the start of the file is skipped (editors on Windows write one).
     */
    public static Iterable<Line> read(Path file) {
        return () -> new Iterator<>() {
            private final InputStream in = open(file);
            private final ByteArrayOutputStream buffer = new ByteArrayOutputStream(256);
            private int number;
            private Line next = advance();

            private Line advance() {
                try {
                    while (true) {
                        buffer.reset();
                        int b;
                        while ((b = in.read()) != -1 && b != '\n') {
                            buffer.write(b);
                        }
                        if (b == -1 && buffer.size() == 0) {
                            in.close();
                            return null;
                        }
                        number++;
                        byte[] bytes = buffer.toByteArray();
                        int from = number == 1 && startsWithBom(bytes) ? 3 : 0;
                        int to = bytes.length > from && bytes[bytes.length - 1] == '\r' ? bytes.length - 1 : bytes.length;
                        String text;
                        try {
                            text = StandardCharsets.UTF_8.newDecoder()
                                    .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)
                                    .decode(ByteBuffer.wrap(bytes, from, to - from)).toString();
                        } catch (CharacterCodingException e) {
                            return new Line(number, null, "not valid UTF-8 (save the file as UTF-8)");
                        }
                        if (!text.isBlank()) {
                            return parse(number, text);
                        }
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
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

    private static boolean startsWithBom(byte[] bytes) {
        return bytes.length >= 3 && (bytes[0] & 0xFF) == 0xEF && (bytes[1] & 0xFF) == 0xBB && (bytes[2] & 0xFF) == 0xBF;
    }

    static Line parse(int number, String text) {
        try {
            JsonNode node = JSON.readTree(text);
            if (node instanceof ObjectNode object) {
                return new Line(number, object, null);
            }
            return new Line(number, null, "expected a JSON object, found " + (node == null ? "nothing" : node.getNodeType().toString().toLowerCase()));
        } catch (JsonProcessingException e) {
            // Jackson appends where an unclosed object began, as a multi-line "[Source: ...]": the line number says where.
            String why = e.getOriginalMessage().replaceAll("(?s)\\s*\\(start marker at \\[Source.*", "").replaceAll("\\s+", " ");
            return new Line(number, null, "not valid JSON (" + why + ")");
        }
    }

    private static InputStream open(Path file) {
        try {
            return new BufferedInputStream(Files.newInputStream(file), 64 * 1024);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
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
