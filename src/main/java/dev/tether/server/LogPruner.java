package dev.tether.server;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;

/**
 * Keeps {@code $TETHER_HOME/logs} bounded. Run at every server launch: a log file (a server's
 * {@code <id>.log}, its rotated {@code <id>.log.1}, its shim's {@code <id>.log.shim}) is deleted when it was
 * last written more than {@link #MAX_AGE} ago, or when it is not among the {@link #MAX_FILES} newest (by
 * last write) of the other files. The logs of servers that still have a lease are never deleted, nor counted. Best effort: a file that
 * cannot be deleted is left, never an error.
 */
public final class LogPruner {
    public static final Duration MAX_AGE = Duration.ofDays(14);
    public static final int MAX_FILES = 200;

    private LogPruner() {}

    /** @param keep lease ids whose logs stay whatever their age; returns how many files were deleted */
    public static int prune(Path logs, Set<String> keep, Instant now) {
        record Entry(Path file, FileTime modified) {}
        List<Entry> entries = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(logs)) {
            for (Path f : files) {
                String name = f.getFileName().toString();
                int dot = name.indexOf(".log");
                if (dot <= 0 || !Files.isRegularFile(f) || keep.contains(name.substring(0, dot))) {
                    continue;
                }
                try {
                    entries.add(new Entry(f, Files.getLastModifiedTime(f)));
                } catch (IOException e) {
                    // gone meanwhile
                }
            }
        } catch (IOException e) {
            return 0;
        }
        entries.sort(Comparator.comparing(Entry::modified).reversed());   // newest first
        int room = MAX_FILES;
        Instant oldest = now.minus(MAX_AGE);
        int deleted = 0;
        for (int i = 0; i < entries.size(); i++) {
            Entry e = entries.get(i);
            if (i >= room || e.modified().toInstant().isBefore(oldest)) {
                try {
                    if (Files.deleteIfExists(e.file())) {
                        deleted++;
                    }
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
        return deleted;
    }
}
