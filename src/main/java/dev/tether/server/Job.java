package dev.tether.server;

import dev.tether.proc.Poll;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.TreeStopper;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * A job run by {@code tether exec}, tethered like a server: it runs under its own {@link JobShim}
 * (subreaper and watchdog) with its own lease — profile {@value #KIND}, port 0 — whose id is the
 * {@code TETHER_LEASE} marker every process of the job carries. Identity rules are those of servers: the
 * job's members are the shim's descendants, the marked processes and the identities the lease records,
 * and every signal goes only to a re-checked identity. If this JVM dies (even by SIGKILL) the shim stops
 * the job's tree; if both die, the lease is an orphan that the next start or {@code tether reap} reaps.
 */
public final class Job {
    /** The lease profile that marks a job (not a server): port 0, no health path. */
    public static final String KIND = "job";
    /** How long the shim gets beyond the grace to stop the tree and exit. */
    private static final Duration SHIM_MARGIN = TreeStopper.KILL_WAIT.plusSeconds(10);

    private final LeaseStore store;
    private final Lease lease;
    private final Spawned shim;
    private final Duration grace;

    private Job(LeaseStore store, Lease lease, Spawned shim, Duration grace) {
        this.store = store;
        this.lease = lease;
        this.shim = shim;
        this.grace = grace;
    }

    /**
     * Starts {@code argv} under a job shim, with the terminal's stdin, stdout and stderr and this process's
     * environment plus {@code env}.
     *
     * @param model the model the job is run against (shown by {@code tether ps}), or null
     * @param grace how long the job gets after SIGINT (or SIGTERM) before its tree is SIGKILLed
     */
    public static Job start(TetherHome home, List<String> argv, Map<String, String> env, String model, Duration grace)
            throws SpawnException {
        home.ensure();
        LeaseStore store = new LeaseStore(home);
        String id = "j" + Long.toString(System.currentTimeMillis() / 1000 % 1_000_000, 36)
                + HexFormat.of().formatHex(randomBytes());
        Lease lease = new Lease(id, model, KIND, argv, null, 0, null, null, 0, ProcessIdentity.current(), null, Set.of(),
                null, Instant.now(), grace.toMillis(), Lease.State.STARTING);
        store.write(lease);
        Map<String, String> shimEnv = new HashMap<>(env);
        shimEnv.put(TetherHome.ENV, home.root().toString());
        List<String> jvmFlags = new ArrayList<>(ServerManager.SHIM_JVM_FLAGS);
        // The shim's stderr is the terminal: no JVM warnings there.
        jvmFlags.remove("-Xlog:all=warning:stderr");
        jvmFlags.addAll(ShimCache.forThisTether().flags());
        Spawned shim;
        try {
            shim = Spawner.spawn(new Spawner.Spec(JavaCommand.of(jvmFlags, JobShim.class.getName(), home.root().toString(), id),
                    shimEnv, null, null, id, false, Spawner.Output.INHERIT));
        } catch (SpawnException e) {
            store.remove(id);
            throw e;
        }
        Lease recorded = store.update(id, l -> l.withShim(shim.identity().orElse(null))).orElse(lease);
        return new Job(store, recorded, shim, grace);
    }

    private static byte[] randomBytes() {
        byte[] random = new byte[4];
        ThreadLocalRandom.current().nextBytes(random);
        return random;
    }

    public String id() {
        return lease.id();
    }

    /** The job's lease as it is now (with the job's root once started), or as it was last known. */
    public Lease lease() {
        return store.read(lease.id()).orElse(lease);
    }

    public boolean isRunning() {
        return shim.process().isAlive();
    }

    /** Ctrl-C: the job's group gets SIGINT; after the grace the shim stops the tree. A second call stops it at once. */
    public void interrupt() {
        shim.identity().ifPresent(id -> Signaller.send(id, Signal.INT));
    }

    /** Stops the job's tree now (SIGTERM, the grace, SIGKILL). */
    public void terminate() {
        shim.identity().ifPresent(id -> Signaller.send(id, Signal.TERM));
    }

    /** The result of a job: its exit code, or why it has none. */
    public record Outcome(int exitCode, Optional<String> problem) {}

    /**
     * Waits until the job and everything it left behind are gone; returns the job's exit code (128+N after
     * signal N). If the shim did not finish its work (it was killed), the tree is stopped from here and the
     * outcome says so.
     */
    public Outcome await() throws InterruptedException {
        int code = shim.process().waitFor();
        return finish(code);
    }

    /** Stops the job (as {@link #terminate}) and waits, bounded, for its shim; then as {@link #await}. */
    public Outcome stop() throws InterruptedException {
        terminate();
        if (!shim.process().waitFor(grace.plus(SHIM_MARGIN).toMillis(), TimeUnit.MILLISECONDS)) {
            shim.identity().ifPresent(id -> Signaller.send(id, Signal.KILL));
            shim.process().waitFor(SHIM_MARGIN.toMillis(), TimeUnit.MILLISECONDS);
        }
        return finish(shim.process().isAlive() ? 1 : shim.process().exitValue());
    }

    private Outcome finish(int shimCode) {
        Optional<Lease> left = store.read(lease.id());
        if (left.isEmpty()) {
            return new Outcome(shimCode, Optional.empty());
        }
        // The shim died without cleaning up (SIGKILL, OOM killer): this process is the tree's watchdog now.
        Lease l = left.get();
        StopReport report = TreeStopper.stop(new ProcessTree(l.membership()), grace);
        store.remove(l.id());
        if (l.server() == null) {
            return new Outcome(shimCode, Optional.of("the job was not started: its shim (pid " + shim.pid() + ") exited with "
                    + shimCode + " before starting it"));
        }
        return new Outcome(shimCode, Optional.of("the job's shim (pid " + shim.pid() + ") exited with " + shimCode
                + " without finishing; the job's tree was stopped from here: " + report.summary()));
    }

    /** Waits (bounded) for the job's root to be recorded in its lease: for tests and diagnostics. */
    public Optional<ProcessIdentity> awaitRoot(Duration timeout) {
        Poll.until(() -> lease().server() != null || !isRunning(), timeout, Duration.ofMillis(10));
        return Optional.ofNullable(lease().server());
    }
}
