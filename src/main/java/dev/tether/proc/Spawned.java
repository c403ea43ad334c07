package dev.tether.proc;

import java.nio.file.Path;
import java.util.Optional;

/**
 * A process started by {@link Spawner} as the leader of its own session and group.
 *
 * @param identity empty only when the process had already exited and been reaped before its
 *                 identity could be read (it then has no tree left to stop)
 */
public record Spawned(Process process, Optional<ProcessIdentity> identity, String leaseId, Path logFile) {
    public int pid() {
        return (int) process.pid();
    }

    public Membership membership() {
        return Membership.of(this);
    }
}
