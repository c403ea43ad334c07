package dev.tether.server;

import dev.tether.proc.StopReport;

/** What a {@link ServerManager} tells its user. The command line prints these; a library may ignore them. */
public interface ServerEvents {
    default void starting(Lease lease) {}

    default void ready(Lease lease, String baseUrl, java.time.Duration took) {}

    default void reusing(Lease lease, String baseUrl) {}

    default void reaped(Lease lease, StopReport report) {}

    /** A damaged lease of a dead tether was reaped; {@code movedTo} is where its file went. */
    default void reapedDamaged(LeaseStore.Damaged damaged, StopReport report, java.util.Optional<java.nio.file.Path> movedTo) {}

    default void exited(Lease lease, int exitCode) {}

    default void stopped(Lease lease, String summary) {}

    default void waiting(String message) {}

    ServerEvents NONE = new ServerEvents() {};
}
