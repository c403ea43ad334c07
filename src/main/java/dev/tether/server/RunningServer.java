package dev.tether.server;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * A running server as the layers above see it, whatever backend runs it (DESIGN 7): where it answers, whether it
 * still runs and why not, and stop/restart. The local backend's is {@link ServerHandle}; a cluster backend's
 * would be a scheduler job. Nothing here names a process: pids, shims and trees stay inside the backend.
 */
public interface RunningServer extends AutoCloseable {
    /** Whether a server still runs and, if not, why it ended: what a run's recovery decides by. */
    enum End {
        /** It runs. */
        RUNNING,
        /** Its root exited on its own (a crash): {@link #exitCode()}. */
        EXITED,
        /** {@code tether stop} or a SIGTERM to its shim stopped it: {@link #stoppedBy()}. Never restarted. */
        STOPPED_OUTSIDE,
        /** Its watchdog (the shim) died without stopping it (kill -9, the OOM killer); the tree was stopped from here. */
        SHIM_LOST,
        /** It runs but answers nothing, not even its health check: declared hung by the run (and being restarted). */
        HUNG,
        /** Stopped from here (close, Ctrl-C, or a stop on purpose). */
        STOPPED,
        /** A server shared from another tether whose lease is gone or stopping: its owner stopped it. */
        GONE
    }

    /** {@code http://host:port}, where OpenAI-compatible requests go (the client adds {@code /v1}). */
    String baseUrl();

    int port();

    String model();

    /** The lease that makes it ours (id, owner, placement, log). */
    Lease lease();

    ServerSpec spec();

    /** Whether this process started it (and so stops it on close); a shared server is never stopped from here. */
    boolean owned();

    int restarts();

    /** It still runs (RUNNING or HUNG). */
    default boolean isAlive() {
        End end = end();
        return end == End.RUNNING || end == End.HUNG;
    }

    /** Why it ended, or RUNNING (HUNG once the run declared it hung, until it is restarted). */
    End end();

    /** Who stopped it from outside ({@code `tether stop`}, {@code SIGTERM to its shim}); empty otherwise. */
    Optional<String> stoppedBy();

    /** The run found it hung (see {@link End#HUNG}); a restart clears it. */
    void markHung();

    /** One health check, as readiness checks it. False for a server that is frozen, deadlocked or gone. */
    boolean answersHealth();

    /** The root's exit code, if it exited on its own. */
    Optional<Integer> exitCode();

    /** Completes when it ends without being asked to from here (the exit code, or null when its watchdog is gone). */
    CompletableFuture<Integer> onExit();

    /** The summary of a stop from outside, if something else stopped it. */
    Optional<String> externalStopSummary();

    /** Stops it completely (idempotent); a one-line summary. */
    String stop();

    /** Stops it completely, then starts it again with the same spec, on the same port. */
    void restart() throws ServerStartException, ForeignPortException, PortInUseException;

    @Override
    default void close() {
        stop();
    }

    /**
     * Stops the servers at the same time, each with its own grace, and returns when all are stopped: N replicas
     * that ignore SIGTERM take one grace to stop, not N.
     */
    static void stopAll(java.util.List<? extends RunningServer> servers) {
        if (servers.size() == 1) {
            servers.getFirst().stop();
            return;
        }
        java.util.List<Thread> stoppers = new java.util.ArrayList<>();
        for (RunningServer server : servers) {
            // Platform threads: this runs in the shutdown hook too, where nothing else is certain to make progress.
            stoppers.add(Thread.ofPlatform().name("tether-stop-" + server.lease().id()).start(server::stop));
        }
        boolean interrupted = false;
        for (Thread stopper : stoppers) {
            while (true) {
                try {
                    stopper.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;   // a stop is never abandoned half way
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
