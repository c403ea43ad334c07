package dev.tether.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.function.Function;

/**
 * An append-only JSONL file that a crash cannot corrupt and a re-run continues (DESIGN 6).
 *
 * <ul>
 *   <li>Each record is one {@code write(2)} of one complete line: a process killed at any moment —
 *       kill -9 included — leaves whole lines, plus at most one unterminated tail.</li>
 *   <li>Opening for resume repairs that tail: the unterminated bytes go to {@code <file>.torn} (kept for
 *       inspection, never silently lost) and the file is cut back to its last complete line.</li>
 *   <li>Failure records (those with an {@code "error"} field) are dropped on resume, so their items are
 *       tried again and each key ends up in the file exactly once.</li>
 * </ul>
 * Keys of finished records are collected while opening, for the caller to skip done work.
 */
public final class ResumableOutput implements AutoCloseable {
    private final Path file;
    private final FileChannel channel;
    private final DoneKeys done = new DoneKeys();
    private int kept;
    private int droppedFailures;
    private long tornBytes;

    private ResumableOutput(Path file, FileChannel channel) {
        this.file = file;
        this.channel = channel;
    }

    /**
     * @param resume false: start over (an existing file is moved to {@code <file>.bak})
     * @param key    the key of a record, or null if it has none
     */
    public static ResumableOutput open(Path file, boolean resume, Function<ObjectNode, String> key) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        ResumableOutput out;
        if (!resume && Files.exists(file)) {
            Files.move(file, file.resolveSibling(file.getFileName() + ".bak"), StandardCopyOption.REPLACE_EXISTING);
        }
        if (resume && Files.exists(file)) {
            out = compact(file, key);
        } else {
            out = new ResumableOutput(file, FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.APPEND));
        }
        return out;
    }

    /** Rewrites the file without its torn tail and failure records, atomically, then opens it for appending. */
    private static ResumableOutput compact(Path file, Function<ObjectNode, String> key) throws IOException {
        long size = Files.size(file);
        long complete = lastNewline(file, size);
        long torn = size - complete;
        if (torn > 0) {
            try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
                ByteBuffer tail = ByteBuffer.allocate((int) Math.min(torn, 16 << 20));
                in.read(tail, complete);
                Files.write(file.resolveSibling(file.getFileName() + ".torn"), java.util.Arrays.copyOf(tail.array(), tail.position()),
                        StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            }
            try (FileChannel cut = FileChannel.open(file, StandardOpenOption.WRITE)) {
                cut.truncate(complete);
            }
        }
        // Pass 1: are there failure records to drop? Most resumes have none and need no rewrite.
        boolean needsRewrite = false;
        for (Jsonl.Line line : Jsonl.read(file)) {
            if (!line.ok() || isFailure(line.object())) {
                needsRewrite = true;
                break;
            }
        }
        Path source = file;
        Path rewritten = null;
        if (needsRewrite) {
            rewritten = file.resolveSibling(file.getFileName() + ".compact");
            try (var writer = Files.newBufferedWriter(rewritten, StandardCharsets.UTF_8)) {
                for (Jsonl.Line line : Jsonl.read(file)) {
                    if (line.ok() && !isFailure(line.object())) {
                        writer.write(Jsonl.write(line.object()));
                        writer.write('\n');
                    }
                }
            }
            source = rewritten;
        }
        ResumableOutput out;
        int failures = 0;
        int kept = 0;
        DoneKeys keys = new DoneKeys();
        for (Jsonl.Line line : Jsonl.read(source)) {
            kept++;
            String k = key.apply(line.object());
            if (k != null) {
                keys.add(k);
            }
        }
        if (rewritten != null) {
            for (Jsonl.Line line : Jsonl.read(file)) {
                if (!line.ok() || isFailure(line.object())) {
                    failures++;
                }
            }
            Files.move(rewritten, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
        out = new ResumableOutput(file, FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND));
        out.done.addAll(keys);
        out.kept = kept;
        out.droppedFailures = failures;
        out.tornBytes = torn;
        return out;
    }

    /**
     * What a resume of {@code file} would keep, found read-only and by streaming (the file is not changed): the keys
     * of its complete records that are not failure records, and whether it ends in a torn line (a record that was
     * being written when an earlier run died, which a resume cuts off and redoes). A missing file has neither.
     */
    public static Finished finished(Path file, Function<ObjectNode, String> key) throws IOException {
        DoneKeys keys = new DoneKeys();
        if (!Files.exists(file)) {
            return new Finished(keys, false);
        }
        long size = Files.size(file);
        boolean torn = lastNewline(file, size) < size;
        for (Jsonl.Line line : Jsonl.read(file)) {
            if (line.ok() && !isFailure(line.object())) {
                String k = key.apply(line.object());
                if (k != null) {
                    keys.add(k);
                }
            }
        }
        return new Finished(keys, torn);
    }

    /**
     * @param keys keys of the complete, successful records
     * @param torn the file ends in an unterminated line: some record in it is to be redone
     */
    public record Finished(DoneKeys keys, boolean torn) {}

    private static long lastNewline(Path file, long size) throws IOException {
        try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
            long end = size;
            while (end > 0) {
                long start = Math.max(0, end - buffer.capacity());
                buffer.clear().limit((int) (end - start));
                in.read(buffer, start);
                for (int i = buffer.position() - 1; i >= 0; i--) {
                    if (buffer.get(i) == '\n') {
                        return start + i + 1;
                    }
                }
                end = start;
            }
            return 0;
        }
    }

    /**
     * A failure record: one with an "error" that is not null (a Batch API output line says {@code "error": null} when
     * its request succeeded).
     */
    public static boolean isFailure(ObjectNode record) {
        JsonNode error = record.get("error");
        return error != null && !error.isNull();
    }

    public Path file() {
        return file;
    }

    /** Keys of the records already in the file (work to skip). */
    public DoneKeys done() {
        return done;
    }

    /** Records kept from an earlier run. */
    public int resumed() {
        return kept;
    }

    public int droppedFailures() {
        return droppedFailures;
    }

    public long tornBytes() {
        return tornBytes;
    }

    /**
     * Appends one record as one line, in one write. Thread-safe. When the write fails (a full disk writes part of
     * the line, then fails with ENOSPC), the file is cut back to where the line began, so it still holds only
     * complete lines and a resume after freeing space continues from there.
     */
    public void append(ObjectNode record) {
        byte[] line = (Jsonl.write(record) + "\n").getBytes(StandardCharsets.UTF_8);
        synchronized (this) {
            long start = -1;
            try {
                start = channel.size();
                ByteBuffer buffer = ByteBuffer.wrap(line);
                while (buffer.hasRemaining()) {
                    channel.write(buffer);
                }
            } catch (IOException e) {
                if (start >= 0) {
                    try {
                        channel.truncate(start);
                    } catch (IOException cut) {
                        e.addSuppressed(cut);   // a resume cuts the torn tail off (to <file>.torn) instead
                    }
                }
                throw new WriteFailed(file, e);
            }
        }
    }

    /** A record could not be written (disk full, I/O error); the file holds only the complete lines before it. */
    public static final class WriteFailed extends UncheckedIOException {
        WriteFailed(Path file, IOException cause) {
            super("cannot write to " + file + ": " + reason(cause), cause);
        }

        private static String reason(IOException e) {
            String m = e.getMessage();
            return m == null || m.isBlank() ? e.getClass().getSimpleName() : m;
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (channel.isOpen()) {
            channel.force(false);
            channel.close();
        }
    }
}
