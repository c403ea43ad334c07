package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.Member;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
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
 * <p>Latency (issue 10, item 13; BENCHMARKS.md): until the port accepts a connection, a connect is tried
 * every {@value #LISTEN_POLL_MILLIS} ms (refused by the kernel while nothing listens: no server sees it);
 * once it accepts, who holds the listening sockets is looked up once, and only then is the health URL
 * asked, every {@value #HEALTH_POLL_MILLIS} ms, over a bare socket ({@link HealthProbe}). On the first
 * healthy answer, the few reads that find the sockets still held by the shim's descendants are all that
 * stands between it and {@code Ready:}.
 */
final class ReadyWait {
    static final long LISTEN_POLL_MILLIS = 2;
    static final long HEALTH_POLL_MILLIS = 10;

    private final LeaseStore store;
    private final Lease lease;
    private final ShimConnection connection;
    private final Readiness health;   // null: listening is ready
    private final Readiness logLine;  // null: no log line to wait for
    private final String connectHost;

    ReadyWait(LeaseStore store, Lease lease, ShimConnection connection, String readyLog) {
        String host = ServerSpec.connectableHost(lease.host() == null ? "" : lease.host());
        this.connectHost = host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
        this.store = store;
        this.lease = lease;
        this.connection = connection;
        this.health = lease.healthPath() == null ? null
                : Readiness.http(ServerSpec.baseUrl(lease.host(), lease.port()) + lease.healthPath());
        this.logLine = readyLog == null || lease.logPath() == null ? null
                : Readiness.logLine(java.nio.file.Path.of(lease.logPath()), java.util.regex.Pattern.compile(readyLog));
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
                    + (logLine == null ? "" : " and " + logLine.describe())
                    + "); raise --startup-timeout for a slow model", ServerManager.logTail(lease));
        }
        if (!failure.isEmpty()) {
            throw new ServerStartException(failure, ServerManager.logTail(lease));
        }
    }

    /** "" when ready, null on time out, else why it can never be. */
    private String failure(Duration timeout) throws ForeignPortException {
        long deadline = System.nanoTime() + Math.max(0, timeout.toNanos());
        Set<Long> verified = null;   // the listening sockets found to be this server's
        while (true) {
            if (connection.exitCode() != null) {
                return "the server exited with code " + connection.exitCode() + " before it was ready";
            }
            if (!connection.shimAlive()) {
                return "the server's shim exited unexpectedly";
            }
            long interval = LISTEN_POLL_MILLIS;
            if (verified == null && accepts()) {
                Set<Long> sockets = PortListeners.listeningSockets(lease.port());
                if (!sockets.isEmpty() && ours(sockets)) {
                    verified = sockets;
                }
            }
            if (verified != null) {
                if (logLine != null && !logLine.isReady()) {
                    interval = HEALTH_POLL_MILLIS;   // it listens, but has not said in its log that it is ready
                } else if (health == null) {
                    return READY;
                } else if (health.isReady()) {
                    // Still ours? The quick look first; the table and full scan only if it cannot tell.
                    if (heldByShimDescendants(verified)) {
                        return READY;
                    }
                    Set<Long> now = PortListeners.listeningSockets(lease.port());
                    if (!now.isEmpty() && ours(now)) {
                        return READY;
                    }
                    verified = null;   // its sockets changed meanwhile: look at who listens again
                    continue;
                } else {
                    interval = HEALTH_POLL_MILLIS;
                }
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

    /**
     * Whether something accepts connections on the port: a connect that the kernel refuses at once while
     * nothing listens (tens of microseconds, and no server sees it). Reading {@code /proc/net/tcp} instead
     * walks the kernel's whole connection hash table, about 7 ms of CPU per read on this machine, which is
     * why the table is read only once something accepts (to see who holds the socket).
     */
    private boolean accepts() {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(connectHost, lease.port()), 1000);
            return true;
        } catch (IOException e) {
            return false;
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
