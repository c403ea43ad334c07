package dev.tether.pipeline;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.InputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
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
     * read; a UTF-8 byte order mark at the start of the file is skipped (editors on Windows write one); a line may
     * end in CRLF.
     */
    public static Iterable<Line> read(Path file) {
        return () -> new Lines(file);
    }

    /**
     * Splits the bytes itself: reads 64 KiB at a time, finds each '\n' in the buffer, and decodes the line's slice
     * (ASCII directly, anything else through one reused strict decoder). Reading byte by byte through a stream, with
     * a new decoder per line, was about ten times slower (BENCHMARKS.md, "Reading JSONL").
     */
    private static final class Lines implements Iterator<Line> {
        private final Path file;
        private final InputStream in;
        private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        private CharBuffer chars = CharBuffer.allocate(1024);
        private byte[] buffer = new byte[64 * 1024];
        private int pos;       // the next line starts here
        private int end;       // bytes read so far end here
        private int scanned;   // no '\n' in buffer[pos, scanned)
        private boolean eof;
        private int number;
        private Line next;

        Lines(Path file) {
            this.file = file;
            this.in = open(file);
            this.next = advance();
        }

        private Line advance() {
            try {
                while (true) {
                    int newline = indexOfNewline();
                    while (newline < 0 && !eof) {
                        fill();
                        newline = indexOfNewline();
                    }
                    int from = pos;
                    int to;
                    if (newline >= 0) {
                        to = newline;
                        pos = newline + 1;
                    } else if (pos < end) {
                        to = end;          // the last line, without a newline
                        pos = end;
                    } else {
                        in.close();
                        return null;
                    }
                    scanned = pos;
                    number++;
                    if (number == 1 && to - from >= 3 && (buffer[from] & 0xFF) == 0xEF && (buffer[from + 1] & 0xFF) == 0xBB
                            && (buffer[from + 2] & 0xFF) == 0xBF) {
                        from += 3;
                    }
                    if (to > from && buffer[to - 1] == '\r') {
                        to--;
                    }
                    String text = decode(from, to);
                    if (text == null) {
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

        private int indexOfNewline() {
            for (int i = scanned; i < end; i++) {
                if (buffer[i] == '\n') {
                    return i;
                }
            }
            scanned = end;
            return -1;
        }

        /** Moves the unread bytes to the front (growing the buffer for a line longer than it) and reads more. */
        private void fill() throws IOException {
            if (pos > 0) {
                System.arraycopy(buffer, pos, buffer, 0, end - pos);
                end -= pos;
                scanned -= pos;
                pos = 0;
            }
            if (end == buffer.length) {
                buffer = Arrays.copyOf(buffer, buffer.length * 2);
            }
            int n = in.read(buffer, end, buffer.length - end);
            if (n < 0) {
                eof = true;
            } else {
                end += n;
            }
        }

        /** The line's text, or null when its bytes are not valid UTF-8. */
        private String decode(int from, int to) {
            int i = from;
            while (i < to && buffer[i] >= 0) {
                i++;
            }
            if (i == to) {
                return new String(buffer, from, to - from, StandardCharsets.ISO_8859_1);   // ASCII: nothing to check
            }
            if (chars.capacity() < to - from) {
                chars = CharBuffer.allocate(Math.max(to - from, chars.capacity() * 2));   // never more chars than bytes
            }
            chars.clear();
            decoder.reset();
            CoderResult result = decoder.decode(ByteBuffer.wrap(buffer, from, to - from), chars, true);
            if (!result.isUnderflow() || !decoder.flush(chars).isUnderflow()) {
                return null;
            }
            return chars.flip().toString();
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
            return Files.newInputStream(file);
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
