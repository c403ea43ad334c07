package dev.tether.bench;

import dev.tether.pipeline.Jsonl;
import java.io.BufferedWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * How fast {@link Jsonl#read} reads and parses a big prompts file: a file of {@code lines} lines of about 100 bytes
 * (prompts with an id, as {@code --task prompts} takes them; once all ASCII, once with a few non-ASCII characters a
 * line), read {@code rounds} times after two warm-up reads in the same JVM; prints each round, the median and the best. Run with {@code bench/run jsonl [lines] [rounds]}.
 */
public final class JsonlBench {
    public static void main(String[] args) throws Exception {
        int lines = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        // ASCII prompts, and prompts with a few non-ASCII characters (which take the strict UTF-8 decoder's path)
        bench(lines, rounds, "ascii", i -> "{\"id\":" + i + ",\"prompt\":\"Question " + i
                + ": what is the capital of France? Answer in one sentence.\"}\n");
        bench(lines, rounds, "utf-8", i -> "{\"id\":" + i + ",\"prompt\":\"Frage " + i
                + ": was ist die Hauptstadt von Österreich? Ein Satz, bitte ✓\"}\n");
    }

    private static void bench(int lines, int rounds, String kind, java.util.function.IntFunction<String> line) throws Exception {
        Path file = Files.createTempFile("tether-jsonl-bench", ".jsonl");
        try {
            try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
                for (int i = 0; i < lines; i++) {
                    w.write(line.apply(i));
                }
            }
            long size = Files.size(file);
            System.out.printf("%s file: %d lines, %.1f MB (%.0f bytes a line)%n", kind, lines, size / 1e6, size / (double) lines);
            for (int i = 0; i < 2; i++) {
                read(file, lines);
            }
            List<Double> times = new ArrayList<>();
            for (int i = 0; i < rounds; i++) {
                long t0 = System.nanoTime();
                read(file, lines);
                double ms = (System.nanoTime() - t0) / 1e6;
                times.add(ms);
                System.out.printf("  round %d: %.0f ms (%.0f k lines/s, %.0f MB/s)%n", i + 1, ms, lines / ms, size / 1e3 / ms);
            }
            times.sort(null);
            double median = times.get(times.size() / 2);
            System.out.printf("Jsonl.read, %s, %d lines: median %.0f ms (%.0f k lines/s, %.0f MB/s), best %.0f ms%n",
                    kind, lines, median, lines / median, size / 1e3 / median, times.getFirst());
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static void read(Path file, int expected) {
        long ok = 0;
        for (Jsonl.Line line : Jsonl.read(file)) {
            if (line.ok()) {
                ok++;
            }
        }
        if (ok != expected) {
            throw new IllegalStateException("read " + ok + " records, expected " + expected);
        }
    }
}
