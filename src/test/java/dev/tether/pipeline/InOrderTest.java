package dev.tether.pipeline;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Outputs put in index order when a step ends, in memory or in bounded chunks merged from disk. */
class InOrderTest {
    @TempDir
    Path dir;

    private static long index(com.fasterxml.jackson.databind.node.ObjectNode r) {
        return r.path("index").asLong(Long.MAX_VALUE);
    }

    private Path shuffled(int n) throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            lines.add("{\"index\":" + i + ",\"text\":\"r\\u00e9ponse " + i + "\"}");
        }
        Collections.shuffle(lines, new Random(7));
        Path file = dir.resolve("out.jsonl");
        Files.write(file, lines);
        return file;
    }

    private static void assertInOrder(Path file, int n) throws Exception {
        List<String> lines = Files.readAllLines(file);
        assertThat(lines).hasSize(n);
        for (int i = 0; i < n; i++) {
            assertThat(Jsonl.JSON.readTree(lines.get(i)).get("index").asInt()).isEqualTo(i);
            assertThat(Jsonl.JSON.readTree(lines.get(i)).get("text").asText()).isEqualTo("réponse " + i);
        }
    }

    @Test
    void sortsInMemory() throws Exception {
        Path file = shuffled(500);
        assertThat(InOrder.sort(file, InOrderTest::index)).isTrue();
        assertInOrder(file, 500);
        assertThat(InOrder.sort(file, InOrderTest::index)).as("already in order: left alone").isFalse();
    }

    @Test
    void sortsLargeFilesInChunksMergedFromDisk() throws Exception {
        Path file = shuffled(1000);
        assertThat(InOrder.sort(file, InOrderTest::index, 64)).isTrue();
        assertInOrder(file, 1000);
        try (var list = Files.list(dir)) {
            assertThat(list.map(p -> p.getFileName().toString())).as("no temporary run left").containsExactly("out.jsonl");
        }
    }

    @Test
    void aFileWithALineThatCannotBeReadIsNotRewritten() throws Exception {
        Path file = dir.resolve("out.jsonl");
        Files.writeString(file, "{\"index\":2}\n{\"index\":1}\n{\"index\":0, torn");
        String before = Files.readString(file);
        assertThat(InOrder.sort(file, InOrderTest::index)).isFalse();
        assertThat(Files.readString(file)).isEqualTo(before);
    }
}
