package dev.tether.cli;

import dev.tether.proc.StopReport;
import dev.tether.server.Lease;
import dev.tether.server.ServerEvents;
import java.io.PrintWriter;
import java.time.Duration;

/**
 * Prints what the server manager does. The first words of some lines are a contract (DESIGN 1):
 * {@code Starting server}, {@code Ready:} + URL, {@code Using running server}, {@code Reaped orphan}.
 */
final class ConsoleEvents implements ServerEvents {
    private final PrintWriter out;

    ConsoleEvents(PrintWriter out) {
        this.out = out;
    }

    private void say(String line) {
        out.println(line);
        out.flush();
    }

    @Override
    public void starting(Lease lease) {
        say("Starting server " + lease.id() + " (" + lease.profile() + model(lease) + ", port "
                + lease.port() + "): " + String.join(" ", lease.argv()) + "\n  log: " + lease.logPath());
    }

    @Override
    public void ready(Lease lease, String baseUrl, Duration took) {
        // No String.format here: its first use in a JVM costs milliseconds, between the answer and this line.
        long tenths = (took.toMillis() + 50) / 100;
        say("Ready: " + baseUrl + " (" + lease.id() + model(lease) + ", " + tenths / 10 + "." + tenths % 10 + " s)");
    }

    private static String model(Lease lease) {
        return lease.model() == null ? "" : ", model " + lease.model();
    }

    @Override
    public void reusing(Lease lease, String baseUrl) {
        say("Using running server " + baseUrl + " (" + dev.tether.server.ServerManager.describe(lease) + ", managed by tether pid "
                + lease.owner().pid() + "; it stays up when this run ends)");
    }

    @Override
    public void reaped(Lease lease, StopReport report) {
        say("Reaped orphan " + lease.id() + " (" + dev.tether.server.ServerManager.describe(lease) + ", port "
                + lease.port() + ", left by a tether that is gone): " + report.summary());
    }

    @Override
    public void reapedDamaged(dev.tether.server.LeaseStore.Damaged damaged, StopReport report,
                              java.util.Optional<java.nio.file.Path> movedTo) {
        say("Reaped orphan " + damaged.id() + " (damaged lease file " + damaged.file() + ": " + damaged.problem()
                + "): " + report.summary() + movedTo.map(p -> "; file moved to " + p).orElse(""));
    }

    @Override
    public void stopped(Lease lease, String summary) {
        say("Server " + lease.id() + " stopped: " + summary);
    }

    @Override
    public void waiting(String message) {
        say(message);
    }
}
