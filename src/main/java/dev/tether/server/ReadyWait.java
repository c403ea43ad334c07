package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.Member;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import java.time.Duration;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.locks.LockSupport;

/**
 * Waits until a server this tether just started is ready, and makes sure "ready" means <em>this</em>
 * server (issue 10, item 1): the socket listening on its port must be held by processes of its own tree
 * (the lease's membership). A server that died on EADDRINUSE while another process answers on the
 * port is never taken as ready: that listener is foreign, whoever it is (another user's program, another
 * {@code TETHER_HOME}'s server, a server whose lease file is damaged).
 *
 * <p>Latency (issue 10, item 13; BENCHMARKS.md): the listening state is read from {@code /proc/net/tcp*}
 * every {@value #LISTEN_POLL_MILLIS} ms, which the server never sees; only once it listens is its health
 * URL asked, every {@value #HEALTH_POLL_MILLIS} ms, over a bare socket ({@link HealthProbe}). Who holds
 * the socket is looked up once per new listening socket, not on every poll.
 */
final class ReadyWait {
    static final long LISTEN_POLL_MILLIS = 2;
    static final long HEALTH_POLL_MILLIS = 10;

    private final LeaseStore store;
    private final Lease lease;
    private final ShimConnection connection;
    private final Readiness health;   // null: listening is ready

    ReadyWait(LeaseStore store, Lease lease, ShimConnection connection) {
        this.store = store;
        this.lease = lease;
        this.connection = connection;
        this.health = lease.healthPath() == null ? null
                : Readiness.http(ServerSpec.baseUrl(lease.host(), lease.port()) + lease.healthPath());
    }

    /**
     * Returns when the server is ready.
     *
     * @param timeout what is left of the start's deadline
     * @param startupTimeout the whole deadline (for the message)
     * @throws ServerStartException when it exits, its shim dies, or time runs out
     * @throws ForeignPortException when the port answers but a process outside this server's tree holds it
     */
    void await(Duration timeout, Duration startupTimeout) throws ServerStartException, ForeignPortException {
        String failure = failure(timeout);
        if (failure == null) {
            throw new ServerStartException("the server was not ready after " + startupTimeout.toSeconds() + " s ("
                    + (health == null ? "port " + lease.port() + " listens" : health.describe())
                    + "); raise --startup-timeout for a slow model", ServerManager.logTail(lease));
        }
        if (!failure.isEmpty()) {
            throw new ServerStartException(failure, ServerManager.logTail(lease));
        }
    }

    /** "" when ready, null on time out, else why it can never be. */
    private String failure(Duration timeout) throws ForeignPortException {
        long deadline = System.nanoTime() + Math.max(0, timeout.toNanos());
        Set<Long> verified = Set.of();
        while (true) {
            if (connection.exitCode() != null) {
                return "the server exited with code " + connection.exitCode() + " before it was ready";
            }
            if (!connection.shimAlive()) {
                return "the server's shim exited unexpectedly";
            }
            Set<Long> sockets = PortListeners.listeningSockets(lease.port());
            long interval = LISTEN_POLL_MILLIS;
            if (sockets.isEmpty() && !warm) {
                warmUp();
            }
            if (!sockets.isEmpty()) {
                if (!sockets.equals(verified)) {
                    if (!ours(sockets)) {
                        continue;   // a holder went away while we looked: look again
                    }
                    verified = sockets;
                }
                if (health == null) {
                    return READY;
                }
                if (health.isReady() && PortListeners.listeningSockets(lease.port()).equals(verified)) {
                    return READY;
                }
                interval = HEALTH_POLL_MILLIS;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return TIMED_OUT;
            }
            LockSupport.parkNanos(Math.min(left, interval * 1_000_000));
            if (Thread.currentThread().isInterrupted()) {
                return "interrupted while waiting for the server";
            }
        }
    }

    private boolean warm;

    /**
     * While nothing listens yet, runs once what the first checks after it listens will run (the shim's
     * children, their sockets, a connection attempt the kernel refuses), so those checks do not pay this
     * fresh JVM's class loading between the server's first healthy answer and {@code Ready:} (about half
     * of that time in a measured run; BENCHMARKS.md).
     */
    private void warmUp() {
        warm = true;
        if (lease.shim() != null) {
            for (int child : ProcFs.children(lease.shim().pid())) {
                ProcFs.socketInodes(child);
            }
        }
        if (health != null) {
            health.isReady();   // refused: nothing listens (and if it just began to, one early health request)
        }
    }

    private static final String READY = "";
    private static final String TIMED_OUT = null;

    /**
     * Whether every process holding one of these listening sockets is in this server's tree. False when
     * the sockets changed while we looked (the caller looks again).
     */
    private boolean ours(Set<Long> sockets) throws ForeignPortException {
        if (heldByShimDescendants(sockets)) {
            return true;
        }
        Set<Integer> tree = null;
        for (PortListeners.Listener listener : PortListeners.find(lease.port())) {
            if (!sockets.contains(listener.inode())) {
                return false;
            }
            if (listener.holders().isEmpty()) {
                if (PortListeners.listeningSockets(lease.port()).contains(listener.inode())) {
                    throw new ForeignPortException(lease.port(), "port " + lease.port() + " answers, but the socket"
                            + " listening there (" + listener.address() + ", uid " + listener.uid() + ") is held by a"
                            + " process you cannot see (another user's or another namespace's), not by this server;"
                            + " run tether with --port auto to use another port");
                }
                return false;
            }
            for (ProcessIdentity holder : listener.holders()) {
                if (tree == null) {
                    tree = members();
                }
                if (!tree.contains(holder.pid())) {
                    throw new ForeignPortException(lease.port(), foreign(holder, listener), false);
                }
            }
        }
        return true;
    }

    /**
     * The quick answer, in a few reads: every listening socket is held by a descendant of the server's shim
     * (its subreaper, so escaped daemons are its children too). Otherwise the full look below names who
     * holds it.
     */
    private boolean heldByShimDescendants(Set<Long> sockets) {
        if (lease.shim() == null) {
            return false;
        }
        Set<Long> unheld = new HashSet<>(sockets);
        java.util.ArrayDeque<Integer> queue = new java.util.ArrayDeque<>(ProcFs.children(lease.shim().pid()));
        Set<Integer> seen = new HashSet<>();
        while (!queue.isEmpty() && !unheld.isEmpty()) {
            int pid = queue.poll();
            if (seen.add(pid)) {
                ProcFs.socketInodes(pid).forEach(unheld::remove);
                queue.addAll(ProcFs.children(pid));
            }
        }
        return unheld.isEmpty() && lease.shim().isAlive();
    }

    private Set<Integer> members() {
        Membership membership = store.read(lease.id()).orElse(lease).membership();
        Set<Integer> pids = new HashSet<>();
        for (Member m : new ProcessTree(membership).members()) {
            pids.add(m.pid());
        }
        return pids;
    }

    private static PortInspector.Holder foreign(ProcessIdentity id, PortListeners.Listener listener) {
        Optional<String> marker = ProcFs.environValue(id.pid(), Membership.LEASE_ENV);
        return new PortInspector.Holder(id, ProcFs.userName(id.pid()), ProcFs.commandLine(id.pid()), listener.address(),
                marker, PortInspector.Ownership.FOREIGN);
    }
}
