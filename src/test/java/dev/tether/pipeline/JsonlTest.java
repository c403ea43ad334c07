package dev.tether.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Jsonl.read: line numbers, blank lines, BOM, CRLF, bad UTF-8, and lines across its 64 KiB buffer. */
class JsonlTest {
    @TempDir
    Path dir;

    private List<Jsonl.Line> read(byte[] bytes) throws Exception {
        Path file = dir.resolve("in.jsonl");
        Files.write(file, bytes);
        List<Jsonl.Line> lines = new ArrayList<>();
        Jsonl.read(file).forEach(lines::add);
        return lines;
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void numbersLinesAndSkipsBlankOnes() throws Exception {
        List<Jsonl.Line> lines = read(utf8("{\"a\":1}\n\n   \n{\"a\":2}\r\n\r\n{\"a\":3}"));
        assertThat(lines).extracting(Jsonl.Line::number).containsExactly(1, 4, 6);
        assertThat(lines).extracting(l -> l.object().get("a").asInt()).containsExactly(1, 2, 3);
    }

    @Test
    void anEmptyFileHasNoLines() throws Exception {
        assertThat(read(new byte[0])).isEmpty();
        assertThat(read(utf8("\n\n"))).isEmpty();
    }

    @Test
    void skipsAByteOrderMarkOnlyAtTheStart() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.writeBytes(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF});
        bytes.writeBytes(utf8("{\"a\":1}\r\n"));
        bytes.writeBytes(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF});
        bytes.writeBytes(utf8("{\"a\":2}\n"));
        List<Jsonl.Line> lines = read(bytes.toByteArray());
        assertThat(lines.get(0).ok()).isTrue();
        assertThat(lines.get(0).object().get("a").asInt()).isEqualTo(1);
        assertThat(lines.get(1).ok()).as("a BOM in the middle is not skipped").isFalse();
        assertThat(lines.get(1).number()).isEqualTo(2);
    }

    @Test
    void aLineThatIsNotUtf8IsABadLineAndTheRestIsRead() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        bytes.writeBytes(utf8("{\"a\":\"é ✓ 😀\"}\n{\"a\":\""));
        bytes.writeBytes(new byte[] {(byte) 0xC3, (byte) 0x28});   // a broken 2-byte sequence
        bytes.writeBytes(utf8("\"}\n{\"a\":\""));
        bytes.writeBytes(new byte[] {(byte) 0xE2, (byte) 0x9C});   // a 3-byte sequence cut short at the end of the line
        bytes.writeBytes(utf8("\n{\"a\":\"ok\"}\n"));
        List<Jsonl.Line> lines = read(bytes.toByteArray());
        assertThat(lines).extracting(Jsonl.Line::number).containsExactly(1, 2, 3, 4);
        assertThat(lines.get(0).object().get("a").asText()).isEqualTo("é ✓ 😀");
        assertThat(lines.get(1).error()).isEqualTo("not valid UTF-8 (save the file as UTF-8)");
        assertThat(lines.get(2).error()).isEqualTo("not valid UTF-8 (save the file as UTF-8)");
        assertThat(lines.get(3).object().get("a").asText()).isEqualTo("ok");
    }

    @Test
    void linesLongerThanTheBufferAndLinesAcrossItsEdgeAreWhole() throws Exception {
        StringBuilder text = new StringBuilder();
        List<String> values = new ArrayList<>();
        for (int i = 0; i < 3000; i++) {
            // multi-byte characters land on every position of the 64 KiB boundaries sooner or later
            String value = "ü✓😀".repeat(i % 7) + "x".repeat(i % 50) + (i % 1000 == 999 ? "long ✓".repeat(40_000) : "");
            values.add(value);
            text.append("{\"v\":\"").append(value).append(i % 2 == 0 ? "\"}\n" : "\"}\r\n");
        }
        List<Jsonl.Line> lines = read(utf8(text.toString()));
        assertThat(lines).hasSize(3000);
        for (int i = 0; i < 3000; i++) {
            assertThat(lines.get(i).number()).isEqualTo(i + 1);
            assertThat(lines.get(i).object().get("v").asText()).isEqualTo(values.get(i));
        }
    }

    @Test
    void badJsonSaysWhyOnOneLine() throws Exception {
        List<Jsonl.Line> lines = read(utf8("{\"a\":1\n[1]\n"));
        assertThat(lines.get(0).error()).startsWith("not valid JSON (").doesNotContain("\n");
        assertThat(lines.get(1).error()).isEqualTo("expected a JSON object, found array");
    }
}
