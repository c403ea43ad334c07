package dev.tether.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ResumableOutputTest {

    @TempDir
    Path dir;

    private static ObjectNode record(int i) {
        return Jsonl.JSON.createObjectNode().put("index", i).put("generation", "text " + i);
    }

    private static String key(ObjectNode r) {
        return r.get("index").asText();
    }

    @Test
    void aTornLastLineIsCutOffKeptAsideAndItsItemRedone() throws Exception {
        Path file = dir.resolve("out.jsonl");
        Files.writeString(file, "{\"index\":0,\"generation\":\"a\"}\n{\"index\":1,\"generation\":\"b\"}\n{\"index\":2,\"gen");
        try (ResumableOutput out = ResumableOutput.open(file, true, ResumableOutputTest::key)) {
            assertThat(out.resumed()).isEqualTo(2);
            assertThat(out.tornBytes()).isEqualTo("{\"index\":2,\"gen".length());
            assertThat(out.done().contains("0")).isTrue();
            assertThat(out.done().contains("2")).isFalse();
            out.append(record(2));
        }
        List<String> lines = Files.readAllLines(file);
        assertThat(lines).hasSize(3);
        lines.forEach(l -> assertThat(Jsonl.parse(1, l).ok()).isTrue());
        assertThat(Files.readString(dir.resolve("out.jsonl.torn"))).isEqualTo("{\"index\":2,\"gen");
    }

    @Test
    void failureRecordsAreDroppedOnResumeSoEachKeyEndsUpOnce() throws Exception {
        Path file = dir.resolve("out.jsonl");
        Files.writeString(file, "{\"index\":0,\"generation\":\"a\"}\n{\"index\":1,\"generation\":null,\"error\":{\"kind\":\"timeout\"}}\n");
        try (ResumableOutput out = ResumableOutput.open(file, true, ResumableOutputTest::key)) {
            assertThat(out.resumed()).isEqualTo(1);
            assertThat(out.droppedFailures()).isEqualTo(1);
            assertThat(out.done().contains("1")).isFalse();
            out.append(record(1));
        }
        assertThat(Files.readAllLines(file)).hasSize(2).noneMatch(l -> l.contains("error"));
    }

    @Test
    void startingOverKeepsTheOldFileAsBak() throws Exception {
        Path file = dir.resolve("out.jsonl");
        Files.writeString(file, "{\"index\":0}\n");
        try (ResumableOutput out = ResumableOutput.open(file, false, ResumableOutputTest::key)) {
            assertThat(out.resumed()).isZero();
        }
        assertThat(Files.readString(dir.resolve("out.jsonl.bak"))).isEqualTo("{\"index\":0}\n");
        assertThat(Files.size(file)).isZero();
    }

    @Test
    void concurrentAppendsNeverInterleave() throws Exception {
        Path file = dir.resolve("out.jsonl");
        String big = "x".repeat(50_000);
        try (ResumableOutput out = ResumableOutput.open(file, true, ResumableOutputTest::key);
             var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < 400; i++) {
                int n = i;
                pool.execute(() -> out.append(record(n).put("payload", big)));
            }
        }
        List<String> lines = Files.readAllLines(file);
        assertThat(lines).hasSize(400);
        assertThat(lines).allMatch(l -> Jsonl.parse(1, l).ok());
    }

    @Test
    void aFileWithoutAnyCompleteLineResumesEmpty() throws Exception {
        Path file = dir.resolve("out.jsonl");
        Files.write(file, "{\"ind".getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE);
        try (ResumableOutput out = ResumableOutput.open(file, true, ResumableOutputTest::key)) {
            assertThat(out.resumed()).isZero();
        }
        assertThat(Files.size(file)).isZero();
    }

    @Test
    void doneKeysAreCompactAndExact() {
        DoneKeys keys = new DoneKeys();
        for (int i = 0; i < 100_000; i++) {
            keys.add("id:" + i);
        }
        assertThat(keys.contains("id:99999")).isTrue();
        assertThat(keys.contains("id:100000")).isFalse();
        assertThat(keys.size()).isEqualTo(100_000);
    }
}
