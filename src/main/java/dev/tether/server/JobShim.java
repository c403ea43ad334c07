package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.Subreaper;
import dev.tether.proc.TreeStopper;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The shim of a job under {@code tether exec}: the job's counterpart of {@link Shim}, one small process in
 * its own session that is a child subreaper (whatever the job forks, daemonizes or setsid's away stays its
 * descendant) and the job's watchdog. Unlike a server's shim it has no pipes: the job's stdin, stdout and
 * stderr are the terminal's, passed through. So
 * <ul>
 *   <li>its owner's death is noticed by polling the owner's identity (pid + start time) every
 *       {@link #OWNER_POLL}, and then the whole job tree is stopped;</li>
 *   <li>the owner talks to it by signals: SIGINT is forwarded to the job's process group (the job sees
 *       Ctrl-C first), and if the job has not ended within the lease's grace the tree is stopped;
 *       SIGTERM stops the tree at once (SIGTERM, the grace, SIGKILL);</li>
 *   <li>it reports by its exit code, which is the job's (128+N when a signal N ended it); when the job
 *       ends, whatever it left behind (background workers) is stopped first, then the lease is removed.
 *       A lease still present after the shim exited means it did not finish (it was killed).</li>
 * </ul>
 * Started as {@code java ... dev.tether.server.JobShim <tether-home> <lease-id>}.
 */
public final class JobShim {
    static final Duration OWNER_POLL = Duration.ofMillis(100);
    private static final Duration MEMBER_REFRESH = Duration.ofMillis(500);
    /** Exit code when the job could not be started at all (as a shell's "command not found"). */
    static final int CANNOT_START = 127;

    private final LeaseStore leases;
    private final String leaseId;
    private final CountDownLatch stopRequested = new CountDownLatch(1);
    private final AtomicBoolean stopping = new AtomicBoolean();
    private volatile String stopReason = "";
    private volatile Spawned job;
    private volatile ProcessTree tree;
    private final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor(r ->
            Thread.ofPlatform().daemon().name("job-shim").unstarted(r));

    private JobShim(LeaseStore leases, String leaseId) {
        this.leases = leases;
        this.leaseId = leaseId;
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: JobShim <tether-home> <lease-id> (started by tether exec, not by hand)");
            System.exit(2);
        }
        LeaseStore store = new LeaseStore(new TetherHome(Path.of(args[0])));
        System.exit(new JobShim(store, args[1]).run());
    }

    private int run() {
        Lease lease = leases.read(leaseId).orElse(null);
        if (lease == null) {
            System.err.println("tether: the job's lease " + leaseId + " does not exist; the job was not started");
            return CANNOT_START;
        }
        // Signals first: a Ctrl-C forwarded while the job starts must not kill this JVM.
        installSignalHandlers();
        Subreaper.become();
        if (lease.owner() == null || !lease.owner().isAlive()) {
            leases.remove(leaseId);   // its tether died while this JVM started: the job must not start at all
            return CANNOT_START;
        }
        try {
            job = Spawner.spawn(new Spawner.Spec(lease.argv(), null, null, null, leaseId, false, Spawner.Output.INHERIT));
        } catch (SpawnException e) {
            System.err.println("tether: cannot start the job: " + e.getMessage());
            leases.remove(leaseId);
            return CANNOT_START;
        }
        ProcessIdentity root = job.identity().orElse(null);
        tree = new ProcessTree(new Membership(leaseId, root, ProcessIdentity.current(), job.pid(), Set.of()));
        leases.update(leaseId, l -> l.withServer(root, job.pid()).withState(Lease.State.READY));

        ProcessIdentity owner = lease.owner();
        timers.scheduleWithFixedDelay(() -> {
            if (owner == null || !owner.isAlive()) {
                requestStop("its tether is gone");
            }
        }, 0, OWNER_POLL.toMillis(), TimeUnit.MILLISECONDS);
        timers.scheduleWithFixedDelay(this::refreshMembers, 0, MEMBER_REFRESH.toMillis(), TimeUnit.MILLISECONDS);
        job.process().onExit().thenRun(() -> requestStop("the job ended"));
        if (interruptedEarly.get()) {
            interrupt();
        }

        try {
            stopRequested.await();
        } catch (InterruptedException e) {
            stopReason = "interrupted";
        }
        timers.shutdownNow();
        Duration grace = Duration.ofMillis(lease.graceMillis() > 0 ? lease.graceMillis() : 10_000);
        // The job's root may have ended; whatever it left (background workers, daemons) goes now.
        StopReport report = TreeStopper.stop(tree, grace, 0);
        int code;
        try {
            code = job.process().waitFor();
        } catch (InterruptedException e) {
            code = 1;
        }
        Subreaper.reapAdoptedZombies(pid -> pid == job.pid());
        if (!report.complete()) {
            System.err.println("tether: the job's tree could not be stopped completely: " + report.summary());
        }
        leases.remove(leaseId);
        return code;
    }

    private volatile boolean refreshFailureSaid;
    private final AtomicBoolean interruptedEarly = new AtomicBoolean();
    private final AtomicBoolean interrupted = new AtomicBoolean();

    /** SIGINT from the owner: the job's group gets SIGINT; after the grace, the tree is stopped. */
    private void interrupt() {
        Spawned j = job;
        if (j == null) {
            interruptedEarly.set(true);
            return;
        }
        if (!interrupted.compareAndSet(false, true)) {
            requestStop("a second SIGINT");   // a second Ctrl-C: no more waiting
            return;
        }
        j.identity().ifPresent(id -> Signaller.sendToGroup(j.pid(), id, Signal.INT));
        long graceMillis = leases.read(leaseId).map(Lease::graceMillis).filter(g -> g > 0).orElse(10_000L);
        timers.schedule(() -> requestStop("the job was still running " + graceMillis + " ms after SIGINT"),
                graceMillis, TimeUnit.MILLISECONDS);
    }

    private void requestStop(String reason) {
        if (stopping.compareAndSet(false, true)) {
            stopReason = reason;
            stopRequested.countDown();
        }
    }

    @SuppressWarnings("removal")
    private void installSignalHandlers() {
        sun.misc.Signal.handle(new sun.misc.Signal("TERM"), sig -> requestStop("SIGTERM"));
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), sig -> interrupt());
        // A hangup of the terminal reaches the owner, which decides; the shim must not die of it.
        sun.misc.Signal.handle(new sun.misc.Signal("HUP"), sun.misc.SignalHandler.SIG_IGN);
    }

    /** Records every member seen, so the tree can be found even after this shim is gone. */
    private void refreshMembers() {
        try {
            tree.members();
            Set<ProcessIdentity> seen = tree.everSeen();
            leases.read(leaseId).filter(l -> !l.members().equals(seen))
                    .ifPresent(l -> leases.update(leaseId, x -> x.withMembers(seen)));
            Subreaper.reapAdoptedZombies(pid -> pid == job.pid());
        } catch (RuntimeException e) {
            // stderr is the job's terminal: say it once, not every half second
            if (!refreshFailureSaid) {
                refreshFailureSaid = true;
                System.err.println("tether: job shim: cannot record the job's members in its lease (" + e.getMessage()
                        + "); the job stays watched by this shim");
            }
        }
    }
}
