package dev.tether.server;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import dev.tether.proc.Membership;
import dev.tether.proc.ProcessIdentity;
import java.time.Instant;
import java.util.List;
import java.util.Set;

/**
 * The record that makes a server "ours" (DESIGN 3.6): one JSON file per managed server start,
 * {@code leases/<id>.json}. Nothing without a lease is ever stopped by tether's own decision.
 *
 * @param server  the server's root process (leader of its session and group); null until spawned
 * @param owner   the tether JVM that started it
 * @param shim    the per-server shim (subreaper and watchdog)
 * @param members every identity ever seen as a member: found again even if the shim is gone and a
 *                member overwrote its environment
 * @param placement which replica of a run's pool it is; null for a lone server (and in older lease files)
 * @param backend   which {@link ServerBackend} runs it ({@code local}: a process tree under a shim here; the
 *                  default of older lease files)
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record Lease(String id, String model, String profile, List<String> argv, String host, int port,
                    String healthPath, ProcessIdentity server, int pgid, ProcessIdentity owner,
                    ProcessIdentity shim, Set<ProcessIdentity> members, String logPath, Instant startedAt,
                    long graceMillis, State state, Placement placement, String backend) {

    public enum State { STARTING, READY, STOPPING }

    public Lease {
        argv = argv == null ? List.of() : List.copyOf(argv);
        members = members == null ? Set.of() : Set.copyOf(members);
        backend = backend == null || backend.isBlank() ? ServerManager.BACKEND : backend;
    }

    /** A lone server's lease (no placement). */
    public Lease(String id, String model, String profile, List<String> argv, String host, int port,
                 String healthPath, ProcessIdentity server, int pgid, ProcessIdentity owner,
                 ProcessIdentity shim, Set<ProcessIdentity> members, String logPath, Instant startedAt,
                 long graceMillis, State state) {
        this(id, model, profile, argv, host, port, healthPath, server, pgid, owner, shim, members, logPath, startedAt,
                graceMillis, state, null, ServerManager.BACKEND);
    }

    /** A replica of a pool (placement count above 1), not a lone server. */
    public boolean replicated() {
        return placement != null && placement.replicated();
    }

    public Membership membership() {
        return new Membership(id, server, shim, pgid, members);
    }

    public boolean ownerAlive() {
        return owner != null && owner.isAlive();
    }

    public boolean shimAlive() {
        return shim != null && shim.isAlive();
    }

    /** Neither the tether that started it nor its shim is alive: nobody will ever stop this server. */
    public boolean isOrphan() {
        return !ownerAlive() && !shimAlive();
    }

    public Lease withState(State newState) {
        return new Lease(id, model, profile, argv, host, port, healthPath, server, pgid, owner, shim, members,
                logPath, startedAt, graceMillis, newState, placement, backend);
    }

    public Lease withServer(ProcessIdentity newServer, int newPgid) {
        return new Lease(id, model, profile, argv, host, port, healthPath, newServer, newPgid, owner, shim, members,
                logPath, startedAt, graceMillis, state, placement, backend);
    }

    public Lease withShim(ProcessIdentity newShim) {
        return new Lease(id, model, profile, argv, host, port, healthPath, server, pgid, owner, newShim, members,
                logPath, startedAt, graceMillis, state, placement, backend);
    }

    public Lease withMembers(Set<ProcessIdentity> newMembers) {
        return new Lease(id, model, profile, argv, host, port, healthPath, server, pgid, owner, shim, newMembers,
                logPath, startedAt, graceMillis, state, placement, backend);
    }
}
