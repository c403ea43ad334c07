package dev.tether.server;

import dev.tether.proc.ProcessTree;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

/**
 * A running server of the local backend, from {@link ServerManager#start}: a process tree under its shim.
 * Closing it stops the server's whole tree if this process started it; a server reused from another live
 * tether is never stopped from here.
 */
public final class ServerHandle implements RunningServer {
    private final ServerManager manager;
    private final ServerSpec spec;
    private final boolean owned;
    private volatile Lease lease;
    private volatile ShimConnection connection;
    private volatile boolean stopped;
    private volatile boolean shimLost;
    private volatile boolean hung;
    private volatile int restarts;

    ServerHandle(ServerManager manager, ServerSpec spec, Lease lease, ShimConnection connection) {
        this.manager = manager;
        this.spec = spec;
        this.lease = lease;
        this.connection = connection;
        this.owned = connection != null;
    }

    @Override
    public String baseUrl() {
        return ServerSpec.baseUrl(lease.host(), lease.port());
    }

    @Override
    public int port() {
        return lease.port();
    }

    @Override
    public String model() {
        return lease.model();
    }

    @Override
    public Lease lease() {
        return lease;
    }

    @Override
    public ServerSpec spec() {
        return spec;
    }

    /** Whether this process started the server (and so stops it on close). */
    @Override
    public boolean owned() {
        return owned;
    }

    @Override
    public int restarts() {
        return restarts;
    }

    /**
     * The server still runs: for an owned server, its shim lives and its root has not exited (or it
     * daemonized and members remain); for a reused one, its lease still exists.
     */
    @Override
    public boolean isAlive() {
        return RunningServer.super.isAlive();
    }

    /** Why the server ended, or RUNNING (HUNG once the run declared it hung, until it is restarted). */
    @Override
    public End end() {
        if (!owned) {
            return manager.store().read(lease.id()).filter(l -> l.state() != Lease.State.STOPPING).isPresent()
                    ? End.RUNNING : End.GONE;
        }
        if (stopped) {
            return shimLost ? End.SHIM_LOST : End.STOPPED;
        }
        ShimConnection c = connection;
        if (c.exitCode() != null) {
            return End.EXITED;
        }
        if (c.stoppedBy() != null || c.stopSummary() != null) {
            return End.STOPPED_OUTSIDE;   // the shim stopped it without being asked to from here
        }
        if (!c.shimAlive()) {
            return End.SHIM_LOST;
        }
        return hung ? End.HUNG : End.RUNNING;
    }

    /** Who stopped it from outside: {@code `tether stop`} or {@code SIGTERM to its shim}; empty otherwise. */
    @Override
    public Optional<String> stoppedBy() {
        if (!owned) {
            return Optional.empty();
        }
        ShimConnection c = connection;
        return Optional.ofNullable(c.stoppedBy() != null ? c.stoppedBy()
                : c.stopSummary() != null ? "SIGTERM to its shim" : null);
    }

    /** The run found it hung (see {@link End#HUNG}); a restart clears it. */
    @Override
    public void markHung() {
        hung = true;
    }

    /**
     * One health check, as readiness checks it (GET the health path, 5 s at most; for a server without
     * one: the port listens). False for a server that is frozen (SIGSTOP), deadlocked or gone.
     */
    @Override
    public boolean answersHealth() {
        return ServerManager.readiness(lease).isReady();
    }

    /** The root's exit code, if it exited on its own. */
    @Override
    public Optional<Integer> exitCode() {
        return owned ? Optional.ofNullable(connection.exitCode()) : Optional.empty();
    }

    /**
     * Completes when the server ends without being asked to from here: with the root's exit code when
     * it exited on its own, or with null when its shim is gone (stopped by {@code tether stop}, or
     * killed). Never completes for a reused server.
     */
    @Override
    public java.util.concurrent.CompletableFuture<Integer> onExit() {
        return owned ? connection.ended : new java.util.concurrent.CompletableFuture<>();
    }

    /** The shim's summary if something else (tether stop, SIGTERM to the shim) stopped the server. */
    @Override
    public Optional<String> externalStopSummary() {
        return owned ? Optional.ofNullable(connection.stopSummary()) : Optional.empty();
    }

    /**
     * Its shim died without stopping the server (kill -9, OOM killer): this process is now the tree's only
     * watchdog, so it stops the tree and removes the lease at once, as the shim would have (DESIGN 5) —
     * rather than leave a lease that names a live owner but nothing that watches the server.
     */
    void watchShim() {
        ShimConnection c = connection;
        c.shimExited().thenRunAsync(() -> shimDied(c), r -> Thread.ofVirtual().name("shim-died").start(r));
    }

    private void shimDied(ShimConnection which) {
        synchronized (this) {
            if (stopped || connection != which || which.stopSummary() != null) {
                return;   // stopped from here, restarted since, or the shim stopped the server itself
            }
            shimLost = true;
        }
        stop();
    }

    /** Stops the whole tree (idempotent). Returns a one-line summary. */
    @Override
    public synchronized String stop() {
        if (!owned || stopped) {
            return "nothing to stop";
        }
        stopped = true;
        String summary = manager.stopOwned(lease, connection);
        manager.forget(this);
        return summary;
    }

    /**
     * Stops the server completely, waits (where nvidia-smi exists, bounded) until the stopped processes
     * no longer hold GPU memory, then starts it again on the same port with the same spec.
     */
    @Override
    public synchronized void restart() throws ServerStartException, ForeignPortException, PortInUseException {
        if (!owned) {
            throw new IllegalStateException("this server belongs to another tether (pid "
                    + lease.owner().pid() + "): it is not restarted from here");
        }
        Set<Integer> pids = treePids();   // before the stop: afterwards the lease is gone
        if (!stopped) {
            manager.stopOwned(lease, connection);
        }
        manager.awaitGpuRelease(pids);
        ServerHandle fresh = manager.launchOwned(spec.withPort(lease.port()));
        this.lease = fresh.lease;
        this.connection = fresh.connection;
        fresh.stopped = true;   // this handle manages fresh's server from now on; fresh must not act on it
        manager.forget(fresh);
        watchShim();
        manager.track(this);   // stop() untracked it: the restarted server must still go at close and shutdown
        this.stopped = false;
        this.shimLost = false;
        this.hung = false;
        restarts++;
    }

    /** The pids of the server's tree: every member its lease recorded, and every member alive now. */
    private Set<Integer> treePids() {
        Lease recorded = manager.store().read(lease.id()).orElse(lease);
        Set<Integer> pids = new HashSet<>();
        if (recorded.server() != null) {
            pids.add(recorded.server().pid());
        }
        recorded.members().forEach(m -> pids.add(m.pid()));
        new ProcessTree(recorded.membership()).members().forEach(m -> pids.add(m.pid()));
        if (recorded.shim() != null) {
            pids.remove(recorded.shim().pid());   // the shim holds no GPU memory
        }
        return pids;
    }

    void updateLease(Lease newer) {
        this.lease = newer;
    }

    ShimConnection connection() {
        return connection;
    }

    @Override
    public String toString() {
        return "server " + lease.id() + " (" + lease.model() + ") at " + baseUrl();
    }
}
