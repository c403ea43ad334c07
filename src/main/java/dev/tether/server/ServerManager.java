package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.TreeStopper;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The local {@link ServerBackend}: starts, reuses, stops and reaps model servers on this machine (DESIGN 3).
 * Usable as a library:
 * <pre>
 * try (var manager = new ServerManager(TetherHome.fromEnvironment(), ServerEvents.NONE);
 *      var server = manager.start(spec)) {
 *     call(server.baseUrl());
 * }
 * </pre>
 * Every server runs under its own {@link Shim}; this JVM holds the pipe whose closing makes the shim
 * stop the server, so the server goes even if this JVM is killed with SIGKILL. A shutdown hook stops
 * the servers on SIGINT and SIGTERM.
 *
 * <p>Its parts: {@link PortClaims} decides what is on a port and writes the lease before anything is spawned;
 * this class launches the shim and waits until the server is ready ({@link ReadyWait}); {@link Reaper} stops
 * orphans and what damaged leases identify; {@link LeaseText} says what a lease is.
 */
public final class ServerManager implements ServerBackend {
    /** The lease {@code backend} of servers run by this class: on this machine, each under its own shim. */
    public static final String BACKEND = "local";

    /**
     * The shim's JVM: small and quick to start (BENCHMARKS.md); the JVM's own warnings go to stderr (the
     * shim's log), never into stdout, which is the shim's report channel. {@link ShimCache} adds its AOT cache.
     * No -Xshare flag: sharing is on by default, and the AOT cache's training run refuses any -Xshare.
     */
    static final List<String> SHIM_JVM_FLAGS = List.of("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Xms8m", "-Xmx64m", "-Xss512k", "-XX:-UsePerfData", "-Xlog:disable", "-Xlog:all=warning:stderr");
    /** How long a shim may take to come up and spawn the server. */
    private static final Duration SHIM_START = Duration.ofSeconds(60);

    private final TetherHome home;
    private final LeaseStore store;
    private final ServerEvents events;
    private final ShimCache shimCache;
    private final Reaper reaper;
    private final PortClaims claims;
    private final ProcessIdentity self = ProcessIdentity.current();
    private final List<ServerHandle> owned = new CopyOnWriteArrayList<>();
    private final Thread shutdownHook = new Thread(this::stopAll, "tether-stop-servers");
    private boolean hookInstalled;
    private volatile boolean closing;

    public ServerManager(TetherHome home, ServerEvents events) {
        this.home = home.ensure();
        this.store = new LeaseStore(home);
        this.events = events == null ? ServerEvents.NONE : events;
        this.shimCache = ShimCache.forThisTether();
        this.reaper = new Reaper(this.home, store, this.events);
        this.claims = new PortClaims(this.home, store, reaper, self);
    }

    ShimCache shimCache() {
        return shimCache;
    }

    LeaseStore store() {
        return store;
    }

    public TetherHome home() {
        return home;
    }

    /**
     * Makes a server for the spec available: reuses a healthy one that another live tether manages on
     * that port, reaps an orphan left there by a dead tether, refuses a foreign listener, and otherwise
     * starts one and waits until it is ready.
     */
    @Override
    public String name() {
        return BACKEND;
    }

    @Override
    public ServerHandle start(ServerSpec spec) throws ServerStartException, ForeignPortException, PortInUseException {
        long deadline = System.nanoTime() + spec.profile().startupTimeout().toNanos();
        while (true) {
            PortClaims.Claim claim = claims.claim(spec);
            if (claim.fresh()) {
                return launch(spec, claim.lease());
            }
            Lease other = claim.lease();
            if (other.state() == Lease.State.READY && healthy(other)) {
                events.reusing(other, ServerSpec.baseUrl(other.host(), other.port()));
                return new ServerHandle(this, spec, other, null);
            }
            // Another live tether is starting (or restarting) a server there, or its server does not answer
            // right now: wait until it is healthy, gone or orphaned, then decide again — at most until our deadline.
            boolean starting = other.state() != Lease.State.READY;
            events.waiting("port " + other.port() + ": a server for " + other.model()
                    + (starting ? " is starting" : " does not answer its health check") + " under tether pid "
                    + other.owner().pid() + "; waiting for it");
            Readiness otherReady = readiness(other);
            boolean changed = Poll.until(() -> store.read(other.id())
                            .map(l -> l.isOrphan() || (l.state() == Lease.State.READY && otherReady.isReady())).orElse(true),
                    Duration.ofNanos(Math.max(0, deadline - System.nanoTime())), Duration.ofMillis(100));
            if (!changed) {
                throw new ServerStartException("port " + other.port() + ": the server that tether pid "
                        + other.owner().pid() + (starting ? " is starting" : " manages there")
                        + " did not become ready in time", "");
            }
        }
    }

    /** Starts a server that this process will own, on the spec's port (used by restart). */
    ServerHandle launchOwned(ServerSpec spec) throws ServerStartException, ForeignPortException, PortInUseException {
        PortClaims.Claim claim = claims.claim(spec);
        if (!claim.fresh()) {
            throw new PortInUseException("port " + spec.port() + " was taken by tether pid "
                    + claim.lease().owner().pid() + " during the restart");
        }
        return launch(spec, claim.lease());
    }

    /** "model M, profile P" or, for a bare command, the command itself ({@link LeaseText#describe}). */
    public static String describe(Lease lease) {
        return LeaseText.describe(lease);
    }

    /** The last lines of a server's log, for errors ({@link LeaseText#logTail}). */
    public static String logTail(Lease lease) {
        return LeaseText.logTail(lease);
    }

    private boolean healthy(Lease lease) {
        return readiness(lease).isReady();
    }

    static Readiness readiness(Lease lease) {
        String path = lease.healthPath();
        return path == null ? Readiness.listening(lease.port())
                : Readiness.http(ServerSpec.baseUrl(lease.host(), lease.port()) + path);
    }

    private ServerHandle launch(ServerSpec spec, Lease lease) throws ServerStartException, ForeignPortException {
        installHook();
        LogPruner.prune(home.logs(), store.list().stream().map(Lease::id).collect(java.util.stream.Collectors.toSet()), Instant.now());
        events.starting(lease);
        long t0 = System.nanoTime();
        // The first port check links its native calls (~100 ms in a fresh JVM): done now, on the other core,
        // while the shim's JVM boots, instead of between the server's first answer and `Ready:`.
        Thread.ofPlatform().daemon().name("tether-warm-port-check")
                .start(() -> dev.tether.proc.PortListeners.listeningSockets(lease.port()));
        Map<String, String> env = new HashMap<>(spec.env());
        env.put(TetherHome.ENV, home.root().toString());
        Spawned shim;
        try {
            Spawner.resolveExecutable(lease.argv().getFirst(), env.get("PATH"));
            List<String> jvmFlags = new ArrayList<>(SHIM_JVM_FLAGS);
            jvmFlags.addAll(shimCache.flags());
            shim = Spawner.spawn(new Spawner.Spec(
                    JavaCommand.of(jvmFlags, Shim.class.getName(), home.root().toString(), lease.id()),
                    env, null, Path.of(lease.logPath() + ".shim"), lease.id(), true, Spawner.Output.PIPE_STDOUT));
        } catch (SpawnException e) {
            store.remove(lease.id());
            throw new ServerStartException(e.getMessage(), "");
        }
        ShimConnection connection = new ShimConnection(shim, t0);
        Lease current;
        try {
            current = store.update(lease.id(), l -> l.withShim(shim.identity().orElse(null))).orElse(lease);
        } catch (RuntimeException e) {
            abandon(shim, lease);   // e.g. the disk filled up: nothing spawned may outlive this failure
            throw e;
        }
        ServerHandle handle = new ServerHandle(this, spec, current, connection);
        owned.add(handle);
        if (closing) {
            // The shutdown hook may have taken its list of servers before this one was added (a replica started
            // in parallel with the others when Ctrl-C came): it is stopped here, not left to its shim's pipe.
            handle.stop();
            throw new ServerStartException("the run is stopping", "");
        }
        handle.watchShim();
        try {
            connection.started.get(SHIM_START.toMillis(), TimeUnit.MILLISECONDS);
            awaitReady(spec, current, connection, t0);
        } catch (ServerStartException | ForeignPortException e) {
            handle.stop();
            throw e;
        } catch (ExecutionException | TimeoutException e) {
            handle.stop();
            String why = e instanceof ExecutionException ? e.getCause().getMessage() : "the shim did not start the server in time";
            if (why != null && why.startsWith(Shim.STATE_FAILURE)) {
                throw new StateException(why.substring(Shim.STATE_FAILURE.length()).trim());
            }
            throw new ServerStartException("the server did not start: " + why, logTail(current));
        } catch (InterruptedException e) {
            handle.stop();
            Thread.currentThread().interrupt();
            throw new ServerStartException("interrupted while starting the server", "");
        }
        // Said first, then recorded: the lease's READY (a locked read and write, ~10 ms in a fresh JVM) is for
        // other tethers and `ps`, and the user should not wait for it (issue 10, item 13). If that write fails,
        // the server is stopped and the failure said after all.
        events.ready(current, ServerSpec.baseUrl(current.host(), current.port()), Duration.ofNanos(System.nanoTime() - t0));
        Lease ready;
        try {
            ready = store.update(lease.id(), l -> l.withState(Lease.State.READY)).orElse(current);
        } catch (RuntimeException e) {
            handle.stop();
            throw e;
        }
        handle.updateLease(ready);
        return handle;
    }

    /**
     * A state write failed right after the shim was spawned: SIGKILL the shim (so it spawns nothing more), stop
     * whatever carries the lease's marker, and drop the lease if the disk lets us.
     */
    private void abandon(Spawned shim, Lease lease) {
        shim.identity().ifPresent(id -> {
            Signaller.send(id, Signal.KILL);
            Poll.until(() -> !id.isAlive(), TreeStopper.KILL_WAIT);
        });
        TreeStopper.stop(new ProcessTree(new Membership(lease.id(), null, null, 0, Set.of())), graceOf(lease), lease.port());
        removeQuietly(lease.id());
    }

    private static Duration graceOf(Lease lease) {
        return Duration.ofMillis(lease.graceMillis() > 0 ? lease.graceMillis() : 10_000);
    }

    /** Removes a lease; a home that cannot even be changed is said, not thrown, in the middle of a stop. */
    private void removeQuietly(String id) {
        try {
            store.remove(id);
        } catch (RuntimeException e) {
            events.waiting("cannot remove the lease " + store.path(id) + ": " + e.getMessage());
        }
    }

    private void awaitReady(ServerSpec spec, Lease lease, ShimConnection connection, long t0)
            throws ServerStartException, ForeignPortException {
        Duration startup = spec.profile().startupTimeout();
        new ReadyWait(store, lease, connection, spec.profile().readyLog()).await(startup.minus(Duration.ofNanos(System.nanoTime() - t0)), startup);
    }

    /** Stops a server this process owns: through its shim, then checks (and finishes) the job itself. */
    String stopOwned(Lease lease, ShimConnection connection) {
        Duration grace = Duration.ofMillis(lease.graceMillis());
        String summary = connection.stop(grace.plus(TreeStopper.KILL_WAIT).plusSeconds(5));
        Lease recorded = store.read(lease.id()).orElse(lease);
        StopReport leftovers = TreeStopper.stop(new ProcessTree(recorded.membership()), grace, recorded.port());
        if (connection.shimAlive()) {
            Signaller.send(connection.shim().identity().orElseThrow(), Signal.KILL);
        }
        removeQuietly(lease.id());
        if (summary == null || !leftovers.events().isEmpty()) {
            summary = leftovers.summary() + (summary == null ? " (the shim did not report)" : "");
        }
        events.stopped(lease, summary);
        return summary;
    }

    /**
     * DESIGN 3.9: before another start on the same GPUs, waits (bounded) until the stopped pids leave
     * nvidia-smi's compute apps; says so when the wait times out. Returns at once without nvidia-smi.
     */
    GpuMemory.Result awaitGpuRelease(Set<Integer> pids) {
        GpuMemory.Result result = GpuMemory.awaitReleased(pids, GpuMemory.DEFAULT_TIMEOUT);
        if (result.outcome() == GpuMemory.Outcome.TIMED_OUT || result.outcome() == GpuMemory.Outcome.QUERY_FAILED) {
            events.waiting(result.message());
        }
        return result;
    }

    void forget(ServerHandle handle) {
        owned.remove(handle);
    }

    /** (Again) one of the servers this manager stops on close and at shutdown: a handle restarted after stop(). */
    void track(ServerHandle handle) {
        if (!owned.contains(handle)) {
            owned.add(handle);
        }
    }

    /** Every lease, live or orphaned. */
    @Override
    public List<Lease> leases() {
        return store.list();
    }

    public Optional<Lease> lease(String id) {
        return store.read(id);
    }

    /**
     * Stops a server whatever tether owns it (for {@code tether stop}): SIGTERM to its shim, which stops
     * the tree and removes the lease — its owner notices the shim's report and ends its run; if the
     * shim is gone, the tree is stopped from here.
     */
    @Override
    public String stop(Lease lease) {
        for (ServerHandle handle : owned) {
            if (handle.lease().id().equals(lease.id())) {
                return handle.stop();
            }
        }
        Duration grace = Duration.ofMillis(lease.graceMillis() > 0 ? lease.graceMillis() : 10_000);
        // Marked first: the shim reads it on SIGTERM and tells its owner "stopped from outside by `tether stop`",
        // and the owner's recovery then does not restart it.
        store.update(lease.id(), l -> l.withState(Lease.State.STOPPING));
        if (lease.shimAlive() && Signaller.send(lease.shim(), Signal.TERM) == Signaller.Outcome.SENT) {
            Poll.until(() -> !lease.shim().isAlive(), grace.plus(TreeStopper.KILL_WAIT).plusSeconds(5), Duration.ofMillis(20));
        }
        StopReport rest = TreeStopper.stop(new ProcessTree(store.read(lease.id()).orElse(lease).membership()),
                grace, lease.port());
        store.remove(lease.id());
        return rest.events().isEmpty() ? "stopped by its shim" : rest.summary();
    }

    /**
     * Stops every server whose owner and shim are both gone, damaged leases included (what they still
     * identify); returns the leases reaped (a damaged one as its salvaged lease).
     */
    @Override
    public List<Lease> reap() {
        return reaper.reapAll();
    }

    /** Lease files that do not parse, each with what could be salvaged from it. */
    public List<LeaseStore.Damaged> damagedLeases() {
        return store.damaged();
    }

    /**
     * Stops what a damaged lease still identifies (for {@code tether stop}, {@code tether port --kill}):
     * through its shim when a recorded shim lives, then every member found by the lease's marker, recorded
     * identities and group; moves the file aside. Never throws for what the file lacks.
     */
    public String stopDamaged(LeaseStore.Damaged damaged) {
        return reaper.stopDamaged(damaged);
    }

    private synchronized void installHook() {
        if (!hookInstalled) {
            Runtime.getRuntime().addShutdownHook(shutdownHook);
            hookInstalled = true;
        }
    }

    private void stopAll() {
        closing = true;
        RunningServer.stopAll(new ArrayList<>(owned));
    }

    /**
     * This manager is stopping its servers (close, or the shutdown hook after Ctrl-C or SIGTERM): a
     * server that ends now is not to be restarted.
     */
    @Override
    public boolean closing() {
        return closing;
    }

    /** Stops every server this manager started. */
    @Override
    public void close() {
        stopAll();
        synchronized (this) {
            if (hookInstalled) {
                try {
                    Runtime.getRuntime().removeShutdownHook(shutdownHook);
                } catch (IllegalStateException e) {
                    // already shutting down: the hook is running
                }
                hookInstalled = false;
            }
        }
    }

    /** For tests and diagnostics: the membership a lease describes. */
    public static Membership membership(Lease lease) {
        return lease.membership();
    }
}
