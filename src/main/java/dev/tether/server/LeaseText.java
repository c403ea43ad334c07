package dev.tether.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** How a lease is told to a user: what the server is, and the last lines of its log. */
public final class LeaseText {
    private static final int LOG_TAIL_LINES = 40;

    private LeaseText() {}

    /** "model M, profile P" or, for a bare command, the command itself. */
    public static String describe(Lease lease) {
        return lease.model() != null ? "model " + lease.model() + ", profile " + lease.profile()
                : "command: " + String.join(" ", lease.argv());
    }

    /** The last lines of a server's log (for errors). */
    public static String logTail(Lease lease) {
        if (lease.logPath() == null) {
            return "";
        }
        try {
            List<String> lines = Files.readAllLines(Path.of(lease.logPath()));
            return String.join("\n", lines.subList(Math.max(0, lines.size() - LOG_TAIL_LINES), lines.size()));
        } catch (IOException e) {
            return "";
        }
    }
}
