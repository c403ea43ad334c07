package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.Subreaper;
import dev.tether.proc.TreeStopper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The per-server shim (DESIGN 3.3 and 3.5), the pattern of containerd-shim and conmon: one small
 * process per server, in its own session, that
 * <ul>
 *   <li>is a child subreaper, so whatever escapes the server's tree is re-parented here and stays a
 *       member (the members are exactly its descendants);</li>
 *   <li>owns the server's output and writes it into the size-capped log;</li>
 *   <li>watches the pipe from the tether that started it: end of file without a {@code stop} (that
 *       tether died, even by SIGKILL) stops the whole tree, removes the lease and exits;</li>
 *   <li>stops the tree on {@code stop} from its owner or on SIGTERM (how {@code tether stop} reaches a
 *       server another tether owns).</li>
 * </ul>
 * Protocol, one line each: owner → shim {@code stop}; shim → owner {@code started <pid> <start>},
 * {@code exited <code>} (the root exited and no member is left), {@code daemonized} (the root exited
 * 0 and members live on), {@code stopping <who>} (a stop from outside begins: {@code `tether stop`},
 * which marks the lease STOPPING before its SIGTERM, or {@code SIGTERM to its shim}),
 * {@code stopped <summary>}, {@code failed <message>}. The lease is marked STOPPING when any stop
 * begins, so a tether that shares the server sees it going before it is gone.
 *
 * <p>Started as {@code java ... dev.tether.server.Shim <tether-home> <lease-id>}, not through the
 * command line parser, to keep its start-up short.
 */
public final class Shim {
    private static final Duration MEMBER_REFRESH = Duration.ofMillis(500);
    /** Starts a "failed" report when the lease could not be written: the owner reports it as a state failure. */
    static final String STATE_FAILURE = "state:";

    private final LeaseStore leases;
    private final String leaseId;
    private final PrintStream owner = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    private final CountDownLatch stopRequested = new CountDownLatch(1);
    private final AtomicBoolean stopping = new AtomicBoolean();
    private volatile String stopReason = "";
    /** Who stopped the server from outside (a SIGTERM), or null. */
    private volatile String stoppedFromOutside;
    private volatile Spawned server;
    private volatile ProcessTree tree;
    private volatile boolean daemonized;
    private volatile Thread outputPump;
    private final AtomicBoolean exitReported = new AtomicBoolean();

    private Shim(LeaseStore leases, String leaseId) {
        this.leases = leases;
        this.leaseId = leaseId;
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: Shim <tether-home> <lease-id> (started by tether, not by hand)");
            System.exit(2);
        }
        LeaseStore store = new LeaseStore(new TetherHome(Path.of(args[0])));
        System.exit(new Shim(store, args[1]).run());
    }

    private int run() {
        Lease lease = leases.read(leaseId).orElse(null);
        if (lease == null) {
            owner.println("failed lease " + leaseId + " does not exist");
            return 1;
        }
        if (!Subreaper.become()) {
            System.err.println("tether shim: cannot become a child subreaper; escaped processes are found by their lease marker only");
        }
        Path log = Path.of(lease.logPath());
        RotatingLog output;
        try {
            output = new RotatingLog(log, RotatingLog.DEFAULT_MAX_BYTES);
            server = Spawner.spawn(new Spawner.Spec(lease.argv(), null, null, log, leaseId, false,
                    Spawner.Output.PIPE_BOTH));
        } catch (IOException | SpawnException e) {
            owner.println("failed " + e.getMessage());
            leases.remove(leaseId);
            return 1;
        }
        ProcessIdentity root = server.identity().orElse(null);
        tree = new ProcessTree(new Membership(leaseId, root, ProcessIdentity.current(), server.pid(), Set.of()));
        try {
            leases.update(leaseId, l -> l.withServer(root, server.pid()));
        } catch (RuntimeException e) {
            // A full or read-only home: a server that is not in its lease must not run on (it would outlive us).
            StopReport report = TreeStopper.stop(tree, Duration.ofMillis(lease.graceMillis() > 0 ? lease.graceMillis() : 10_000),
                    lease.port());
            output.line("[tether] cannot record the server in its lease, stopped it: " + report.summary());
            owner.println("failed " + STATE_FAILURE + " " + e.getMessage());
            try {
                leases.remove(leaseId);
            } catch (RuntimeException ignored) {
                // the owner says what failed
            }
            return 1;
        }
        owner.println("started " + server.pid() + " " + (root == null ? 0 : root.startTicks()));

        outputPump = Thread.ofVirtual().name("server-output").start(() -> {
            try (var in = server.process().getInputStream()) {
                output.pump(in);
            } catch (IOException e) {
                // the server closed its output; exit is watched separately
            }
        });
        Thread.ofPlatform().daemon().name("owner-pipe").start(this::watchOwner);
        installSigtermHandler();
        ScheduledExecutorService refresher = Executors.newSingleThreadScheduledExecutor(r ->
                Thread.ofPlatform().daemon().name("members").unstarted(r));
        refresher.scheduleWithFixedDelay(this::refreshMembers, 0, MEMBER_REFRESH.toMillis(), TimeUnit.MILLISECONDS);
        server.process().onExit().thenRun(this::rootExited);

        try {
            stopRequested.await();
        } catch (InterruptedException e) {
            stopReason = "interrupted";
        }
        if (stoppedFromOutside != null) {
            owner.println("stopping " + stoppedFromOutside);
        }
        leases.update(leaseId, l -> l.withState(Lease.State.STOPPING));
        // Let a refresh in flight finish rather than interrupt it: an interrupt inside the lease store's
        // file lock only fails it (FileLockInterruptionException) and litters the shim's log.
        refresher.shutdown();
        try {
            refresher.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Duration grace = Duration.ofMillis(lease.graceMillis() > 0 ? lease.graceMillis() : 10_000);
        StopReport report = TreeStopper.stop(tree, grace, lease.port());
        output.line("[tether] server stopped (" + stopReason + "): " + report.summary());
        Subreaper.reapAdoptedZombies(pid -> pid == server.pid());
        try {
            leases.remove(leaseId);
        } catch (RuntimeException e) {
            output.line("[tether] " + e.getMessage());
        }
        owner.println("stopped " + report.summary());
        try {
            output.close();
        } catch (IOException ignored) {
            // nothing more to log
        }
        return report.complete() ? 0 : 1;
    }

    // requestStop and reportExit share this object's lock: once a stop is under way, the root's exit is part
    // of it and only "stopped" is reported. Otherwise a root that exited 0 just as the stop began (its
    // members then killed by the stop) read as "exited 0", and the owner took the stop for a crash (found by
    // the chaos soak: `tether stop` right after a DaemonizesTwice server was ready made `serve` exit 1).
    private synchronized void requestStop(String reason) {
        if (stopping.compareAndSet(false, true)) {
            stopReason = reason;
            stopRequested.countDown();
        }
    }

    /** Reads the owner's pipe: a "stop" line, or end of file (the owner is gone). */
    private void watchOwner() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.trim().equals("stop")) {
                    requestStop("stop requested by its tether");
                    return;
                }
            }
        } catch (IOException e) {
            // a broken pipe is the same news as end of file
        }
        requestStop("its tether is gone");
    }

    @SuppressWarnings("removal")
    private void installSigtermHandler() {
        sun.misc.Signal.handle(new sun.misc.Signal("TERM"), sig -> {
            // `tether stop` marks the lease STOPPING before it signals: the owner is told who it was.
            boolean byStopCommand = leases.read(leaseId).map(l -> l.state() == Lease.State.STOPPING).orElse(false);
            synchronized (this) {
                if (!stopping.get()) {
                    stoppedFromOutside = byStopCommand ? "`tether stop`" : "SIGTERM to its shim";
                }
            }
            requestStop("SIGTERM");
        });
        // The shim is in its own session: a terminal's Ctrl-C reaches the owner, which then says "stop".
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), sun.misc.SignalHandler.SIG_IGN);
    }

    private void rootExited() {
        if (stopping.get()) {
            return;   // our own stop ended it and "stopped" follows: an "exited" now would read as a crash
        }
        int code = server.process().exitValue();
        try {
            // Let the server's last lines reach the log before the owner reads its tail (bounded:
            // a descendant may keep the pipe open).
            outputPump.join(java.time.Duration.ofMillis(500));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (code == 0 && !tree.members().isEmpty()) {
            daemonized = true;   // members live on as our descendants: keep managing them
            owner.println("daemonized");
        } else {
            reportExit(code);    // whatever is left is stopped when the owner says so
        }
    }

    private synchronized void reportExit(int code) {
        if (!stopping.get() && !exitReported.getAndSet(true)) {
            owner.println("exited " + code);
        }
    }

    /** Records every member seen, so the tree can be found even after this shim is gone. */
    private void refreshMembers() {
        try {
            if (tree.members().isEmpty() && daemonized) {
                reportExit(0);   // the daemon's last member is gone too
            }
            Set<ProcessIdentity> seen = tree.everSeen();
            leases.read(leaseId).filter(l -> !l.members().equals(seen))
                    .ifPresent(l -> leases.update(leaseId, x -> x.withMembers(seen)));
            Subreaper.reapAdoptedZombies(pid -> pid == server.pid());
        } catch (RuntimeException e) {
            System.err.println("tether shim: member refresh failed: " + e);
        }
    }
}
