package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcStat;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.TreeStopper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Starts, reuses, stops and reaps model servers (DESIGN 3). Usable as a library:
 * <pre>
 * try (var manager = new ServerManager(TetherHome.fromEnvironment(), ServerEvents.NONE);
 *      var server = manager.start(spec)) {
 *     call(server.baseUrl());
 * }
 * </pre>
 * Every server runs under its own {@link Shim}; this JVM holds the pipe whose closing makes the shim
 * stop the server, so the server goes even if this JVM is killed with SIGKILL. A shutdown hook stops
 * the servers on SIGINT and SIGTERM.
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
    private static final int LOG_TAIL_LINES = 40;

    private final TetherHome home;
    private final LeaseStore store;
    private final ServerEvents events;
    private final ShimCache shimCache;
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
            Claim claim = claim(spec);
            if (claim.fresh) {
                return launch(spec, claim.lease);
            }
            Lease other = claim.lease;
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
        Claim claim = claim(spec);
        if (!claim.fresh) {
            throw new PortInUseException("port " + spec.port() + " was taken by tether pid "
                    + claim.lease.owner().pid() + " during the restart");
        }
        return launch(spec, claim.lease);
    }

    private record Claim(Lease lease, boolean fresh) {}

    /** Under the store's lock: decide what is on the port and, if it is free, write our lease for it. */
    private Claim claim(ServerSpec spec) throws ForeignPortException, PortInUseException {
        try {
            return store.locked(() -> {
                // Every orphan is reaped here, whatever its port: DESIGN 5 asks it of the port's next user, but
                // with --port auto no start would ever look at an orphan's port, and dead runs would pile up.
                List<Lease> live = new ArrayList<>();
                LeaseStore.Scan scan = store.scan();
                for (Lease lease : scan.leases()) {
                    if (!BACKEND.equals(lease.backend())) {
                        continue;   // another backend's server (a cluster job): not this machine's processes to judge
                    }
                    if (lease.isOrphan()) {
                        reapLease(lease);
                    } else {
                        live.add(lease);
                    }
                }
                reapDamaged(scan.damaged());
                int port = spec.port();
                if (port == ServerSpec.AUTO_PORT) {
                    port = pickFreePort(spec.host());
                } else {
                    for (Lease lease : live) {
                        if (lease.port() != port) {
                            continue;
                        }
                        if (!sameServer(lease, spec, port)) {
                            throw new PortInUseException("port " + port + ": another server (" + describe(lease)
                                    + ") is already running there, managed by tether pid " + lease.owner().pid()
                                    + "; use --port auto, or `tether stop --port " + port + "`");
                        }
                        return new Claim(lease, false);
                    }
                    reapUnleasedListeners(port);
                }
                Lease lease = newLease(spec, port);
                store.write(lease);
                return new Claim(lease, true);
            });
        } catch (ForeignPortException | PortInUseException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Reusable only if it is the very command we would run: same model, profile and argv. */
    private static boolean sameServer(Lease lease, ServerSpec spec, int port) {
        return java.util.Objects.equals(lease.model(), spec.model())
                && java.util.Objects.equals(lease.profile(), spec.profile().name())
                && lease.argv().equals(spec.argv(port));
    }

    /** "model M, profile P" or, for a bare command, the command itself. */
    public static String describe(Lease lease) {
        return lease.model() != null ? "model " + lease.model() + ", profile " + lease.profile()
                : "command: " + String.join(" ", lease.argv());
    }

    private boolean healthy(Lease lease) {
        return readiness(lease).isReady();
    }

    static Readiness readiness(Lease lease) {
        String path = lease.healthPath();
        return path == null ? Readiness.listening(lease.port())
                : Readiness.http(ServerSpec.baseUrl(lease.host(), lease.port()) + path);
    }

    /**
     * A listener on the port with no lease: a process carrying the marker of a lease that no longer
     * exists is an orphan and is reaped; anything else is foreign and stops the start.
     */
    private void reapUnleasedListeners(int port) throws ForeignPortException, PortInUseException {
        PortInspector inspector = new PortInspector(home);
        for (PortInspector.Holder holder : inspector.holders(port)) {
            if (holder.ownership() == PortInspector.Ownership.FOREIGN) {
                throw new ForeignPortException(port, holder, false);
            }
            if (holder.ownership() == PortInspector.Ownership.DAMAGED) {
                // Damaged leases of dead tethers were reaped just before: this one's tether or shim lives.
                throw new PortInUseException("port " + port + ": held by pid " + holder.identity().pid()
                        + " of a tether-managed server whose lease file " + store.path(holder.leaseId().orElseThrow())
                        + " is damaged; `tether stop --port " + port + "` stops it, or use --port auto");
            }
            if (holder.ownership() == PortInspector.Ownership.ORPHAN) {
                String id = holder.leaseId().orElseThrow();
                int pgid = ProcFs.stat(holder.identity().pid()).map(ProcStat::pgrp).orElse(0);
                Lease ghost = new Lease(id, null, "?", List.of(holder.command()), "", port, null, null, pgid, null, null,
                        Set.of(holder.identity()), null, null, 0, Lease.State.READY);
                reapLease(ghost);
            }
        }
    }

    private int pickFreePort(String host) throws IOException {
        Set<Integer> leased = new java.util.HashSet<>();
        store.list().forEach(l -> leased.add(l.port()));
        for (int attempt = 0; attempt < 100; attempt++) {
            try (ServerSocket probe = new ServerSocket()) {
                probe.setReuseAddress(true);
                probe.bind(new InetSocketAddress(InetAddress.getByName(ServerSpec.connectableHost(host)
                        .replace("[", "").replace("]", "")), 0));
                int port = probe.getLocalPort();
                if (!leased.contains(port)) {
                    return port;
                }
            }
        }
        throw new IOException("no free port found");
    }

    private Lease newLease(ServerSpec spec, int port) {
        String id = leaseId();
        Path log = home.logs().resolve(id + ".log");
        return new Lease(id, spec.model(), spec.profile().name(), spec.argv(port), spec.host(), port,
                spec.profile().healthPath(), null, 0, self, null, Set.of(), log.toString(), Instant.now(),
                spec.grace().toMillis(), Lease.State.STARTING, spec.placement().equals(Placement.SINGLE) ? null : spec.placement(), BACKEND);
    }

    private static String leaseId() {
        byte[] random = new byte[4];
        ThreadLocalRandom.current().nextBytes(random);
        return "t" + Long.toString(System.currentTimeMillis() / 1000 % 1_000_000, 36) + HexFormat.of().formatHex(random);
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
        new ReadyWait(store, lease, connection).await(startup.minus(Duration.ofNanos(System.nanoTime() - t0)), startup);
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
        try {
            return store.locked(() -> {
                List<Lease> reaped = new ArrayList<>();
                LeaseStore.Scan scan = store.scan();
                for (Lease lease : scan.leases()) {
                    if (BACKEND.equals(lease.backend()) && lease.isOrphan()) {
                        reapLease(lease);
                        reaped.add(lease);
                    }
                }
                reaped.addAll(reapDamaged(scan.damaged()));
                return reaped;
            });
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Lease files that do not parse, each with what could be salvaged from it. */
    public List<LeaseStore.Damaged> damagedLeases() {
        return store.damaged();
    }

    /**
     * Damaged leases whose recorded tether and shim are both gone (or unreadable) are orphans: their trees
     * are stopped as far as they can be identified and the files moved aside. The others are said, not touched.
     */
    private List<Lease> reapDamaged(List<LeaseStore.Damaged> damaged) {
        List<Lease> reaped = new ArrayList<>();
        for (LeaseStore.Damaged d : damaged) {
            Lease l = d.salvaged();
            if (l.isOrphan() && !shimRunsFor(d.id())) {
                StopReport report = stopTree(d);
                events.reapedDamaged(d, report, store.moveAside(d));
                reaped.add(l);
            } else {
                events.waiting("lease file " + d.file() + " is damaged (" + d.problem() + "), but its "
                        + (l.ownerAlive() ? "tether pid " + l.owner().pid() : l.shimAlive() ? "shim pid " + l.shim().pid() : "shim")
                        + " is alive; left alone (`tether stop " + d.id() + "` stops it)");
            }
        }
        return reaped;
    }

    /**
     * Whether a live shim manages lease {@code id}: a damaged file may have lost its owner and shim fields,
     * but a shim lives only as long as its tether (its watchdog), so while one runs for the id, the
     * server is managed and must not be reaped (found by ReadyMeansOursTest: a lease cut in half made the
     * next start reap a live tether's server).
     */
    private static boolean shimRunsFor(String id) {
        String shimClass = Shim.class.getName();
        for (int pid : ProcFs.pids()) {
            String command = ProcFs.commandLine(pid);
            if ((command.contains(shimClass) || command.contains(JobShim.class.getName())) && command.endsWith(" " + id)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Stops what a damaged lease still identifies (for {@code tether stop}, {@code tether port --kill}):
     * through its shim when a recorded shim lives, then every member found by the lease's marker, recorded
     * identities and group; moves the file aside. Never throws for what the file lacks.
     */
    public String stopDamaged(LeaseStore.Damaged damaged) {
        StopReport report = stopTree(damaged);
        Optional<Path> moved = store.moveAside(damaged);
        return report.summary() + (moved.map(p -> "; damaged lease file moved to " + p)
                .orElse(Files.exists(damaged.file()) ? "; the damaged lease file " + damaged.file() + " could not be moved" : ""));
    }

    private StopReport stopTree(LeaseStore.Damaged damaged) {
        Lease l = damaged.salvaged();
        Duration grace = Duration.ofMillis(l.graceMillis() > 0 ? l.graceMillis() : 10_000);
        if (l.shimAlive() && Signaller.send(l.shim(), Signal.TERM) == Signaller.Outcome.SENT) {
            Poll.until(() -> !l.shim().isAlive(), grace.plus(TreeStopper.KILL_WAIT).plusSeconds(5), Duration.ofMillis(20));
        }
        return TreeStopper.stop(new ProcessTree(l.membership()), grace, l.port());
    }

    private void reapLease(Lease lease) {
        StopReport report = TreeStopper.stop(new ProcessTree(lease.membership()),
                Duration.ofMillis(lease.graceMillis() > 0 ? lease.graceMillis() : 10_000), lease.port());
        store.remove(lease.id());
        events.reaped(lease, report);
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
