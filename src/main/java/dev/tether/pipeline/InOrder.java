package dev.tether.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.PriorityQueue;
import java.util.function.ToLongFunction;

/**
 * Puts a finished output file in input order. Records are appended as they complete, so with several requests in
 * flight the file is out of order while a step runs; HalluLens reads generation.jsonl and abstain_eval_raw.jsonl by
 * position, so when a step ends its files are rewritten in order of each record's position (a question's index, a
 * prompt's input line). A file already in order is left alone. Large files are sorted in bounded memory: runs of at
 * most {@link #CHUNK} records are sorted and written to temporary files next to it, then merged. The result replaces
 * the file by an atomic rename, so a crash at any moment leaves either the old file or the sorted one.
 */
public final class InOrder {
    /** Records sorted in memory at once (a few hundred bytes each: tens of MB at most). */
    static final int CHUNK = 100_000;

    private InOrder() {}

    private record Entry(long position, String line) {}

    /**
     * @param position a record's place; records without one (Long.MAX_VALUE) go last, in the order they were
     * @return whether the file was rewritten
     */
    public static boolean sort(Path file, ToLongFunction<ObjectNode> position) throws IOException {
        return sort(file, position, CHUNK);
    }

    static boolean sort(Path file, ToLongFunction<ObjectNode> position, int chunk) throws IOException {
        if (!Files.exists(file)) {
            return false;
        }
        long last = Long.MIN_VALUE;
        boolean ordered = true;
        for (Jsonl.Line line : Jsonl.read(file)) {
            if (!line.ok()) {
                return false;   // not a finished file (a resume repairs it first); never rewrite what cannot be read
            }
            if (ordered) {
                long p = position.applyAsLong(line.object());
                ordered = p >= last;
                last = p;
            }
        }
        if (ordered) {
            return false;
        }
        Path sorted = file.resolveSibling(file.getFileName() + ".sorting");
        List<Path> runs = new ArrayList<>();
        try {
            List<Entry> buffer = new ArrayList<>();
            for (Jsonl.Line line : Jsonl.read(file)) {
                buffer.add(new Entry(position.applyAsLong(line.object()), Jsonl.write(line.object())));
                if (buffer.size() >= chunk) {
                    runs.add(writeRun(file, runs.size(), buffer));
                    buffer.clear();
                }
            }
            if (runs.isEmpty()) {
                buffer.sort(Comparator.comparingLong(Entry::position));   // stable: equal positions keep their order
                try (BufferedWriter w = Files.newBufferedWriter(sorted, StandardCharsets.UTF_8)) {
                    for (Entry e : buffer) {
                        w.write(e.line());
                        w.write('\n');
                    }
                }
            } else {
                if (!buffer.isEmpty()) {
                    runs.add(writeRun(file, runs.size(), buffer));
                    buffer.clear();
                }
                merge(runs, sorted);
            }
            try (FileChannel c = FileChannel.open(sorted, StandardOpenOption.WRITE)) {
                c.force(true);
            }
            Files.move(sorted, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return true;
        } finally {
            Files.deleteIfExists(sorted);
            for (Path run : runs) {
                Files.deleteIfExists(run);
            }
        }
    }

    /** One sorted run: lines "position\tjson", so the merge reads positions without parsing the records. */
    private static Path writeRun(Path file, int number, List<Entry> buffer) throws IOException {
        buffer.sort(Comparator.comparingLong(Entry::position));
        Path run = file.resolveSibling(file.getFileName() + ".sort-" + number);
        try (BufferedWriter w = Files.newBufferedWriter(run, StandardCharsets.UTF_8)) {
            for (Entry e : buffer) {
                w.write(Long.toString(e.position()));
                w.write('\t');
                w.write(e.line());
                w.write('\n');
            }
        }
        return run;
    }

    private record Head(long position, String line, int run) {}

    private static void merge(List<Path> runs, Path target) throws IOException {
        List<BufferedReader> readers = new ArrayList<>();
        try (BufferedWriter w = Files.newBufferedWriter(target, StandardCharsets.UTF_8)) {
            // Ties go to the earlier run: runs hold the file's records in their original order.
            PriorityQueue<Head> heads = new PriorityQueue<>(Comparator.comparingLong(Head::position).thenComparingInt(Head::run));
            for (int i = 0; i < runs.size(); i++) {
                readers.add(Files.newBufferedReader(runs.get(i), StandardCharsets.UTF_8));
                next(readers.get(i), i, heads);
            }
            while (!heads.isEmpty()) {
                Head h = heads.poll();
                w.write(h.line());
                w.write('\n');
                next(readers.get(h.run()), h.run(), heads);
            }
        } finally {
            for (BufferedReader r : readers) {
                r.close();
            }
        }
    }

    private static void next(BufferedReader reader, int run, PriorityQueue<Head> heads) throws IOException {
        String line = reader.readLine();
        if (line != null) {
            int tab = line.indexOf('\t');
            heads.add(new Head(Long.parseLong(line.substring(0, tab)), line.substring(tab + 1), run));
        }
    }
}
