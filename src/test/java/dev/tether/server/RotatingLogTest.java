package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A server log capped in size: past the cap the file becomes {@code <log>.1} and a new one starts. */
class RotatingLogTest {
    @TempDir
    Path dir;

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** The file's text without its final newline (each {@code line()} ends with one). */
    private static void assertContent(Path file, String expected) throws Exception {
        String text = Files.readString(file);
        assertThat(text).as(file.toString()).endsWith("\n");
        assertThat(text.substring(0, text.length() - 1)).as(file.toString()).isEqualTo(expected);
    }

    @Test
    void belowTheCapEverythingStaysInOneFile() throws Exception {
        Path file = dir.resolve("s.log");
        RotatingLog log = new RotatingLog(file, 100);
        log.pump(new ByteArrayInputStream(bytes("first line\nsecond line\n")));
        log.line("[tether] a note");
        log.close();
        assertContent(file, "first line\nsecond line\n[tether] a note");
        assertThat(RotatingLog.rotated(file)).doesNotExist();
    }

    @Test
    void passingTheCapRotatesAndKeepsTheNewestLinesInTheLog() throws Exception {
        Path file = dir.resolve("s.log");
        RotatingLog log = new RotatingLog(file, 30);
        log.line("0123456789 one");      // 15 bytes
        log.line("0123456789 two");      // 30: exactly at the cap, no rotation yet
        assertThat(RotatingLog.rotated(file)).doesNotExist();
        log.line("0123456789 three");    // would pass the cap: rotate first
        assertContent(RotatingLog.rotated(file), "0123456789 one\n0123456789 two");
        assertContent(file, "0123456789 three");

        log.line("0123456789 four");     // 17 + 16 > 30: rotate again, replacing the older .1
        log.close();
        assertContent(RotatingLog.rotated(file), "0123456789 three");
        assertContent(file, "0123456789 four");
        try (var files = Files.list(dir)) {
            assertThat(files).hasSize(2);
        }
    }

    @Test
    void aChattyServerNeverGrowsTheLogPastTheCap() throws Exception {
        Path file = dir.resolve("chatty.log");
        long cap = 40_000;   // above the pump's 16 KB reads: a single read is never split
        StringBuilder output = new StringBuilder();
        for (int i = 0; output.length() < 200_000; i++) {
            output.append("line ").append(i).append(" of a chatty server\n");
        }
        RotatingLog log = new RotatingLog(file, cap);
        log.pump(new ByteArrayInputStream(bytes(output.toString())));
        log.close();
        assertThat(Files.size(file)).isLessThanOrEqualTo(cap);
        assertThat(Files.size(RotatingLog.rotated(file))).isLessThanOrEqualTo(cap);
        String newest = Files.readString(file);
        assertThat(output.toString()).endsWith(newest);
        assertThat(Files.readString(RotatingLog.rotated(file)) + newest).isEqualTo(
                output.substring(output.length() - newest.length() - (int) Files.size(RotatingLog.rotated(file))));
    }

    @Test
    void aReopenedLogAppendsAndCountsWhatIsAlreadyThere() throws Exception {
        Path file = dir.resolve("again.log");
        Files.writeString(file, "x".repeat(25) + "\n");   // 26 bytes from an earlier start
        RotatingLog log = new RotatingLog(file, 30);
        log.line("more");                                  // 26 + 5 > 30
        log.close();
        assertContent(RotatingLog.rotated(file), "x".repeat(25));
        assertContent(file, "more");
    }

    @Test
    void oneWriteBiggerThanTheCapIsKeptWhole() throws Exception {
        Path file = dir.resolve("big.log");
        RotatingLog log = new RotatingLog(file, 10);
        log.line("a line much longer than ten bytes");
        log.close();
        assertContent(file, "a line much longer than ten bytes");
    }
}
