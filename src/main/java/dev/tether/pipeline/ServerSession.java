package dev.tether.pipeline;

import dev.tether.client.ClientException;
import dev.tether.client.Endpoints;
import dev.tether.client.ServerRecovery;
import dev.tether.client.ServerStoppedException;
import dev.tether.server.ForeignPortException;
import dev.tether.server.PortInUseException;
import dev.tether.server.RunningServer;
import dev.tether.server.ServerBackend;
import dev.tether.server.ServerSpec;
import dev.tether.server.ServerStartException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.function.Function;

/**
 * The servers a run talks to, one model at a time: a pool of one or more replicas of the same spec (DESIGN 7).
 * A step asks for its model; if another model's servers are up, they are stopped completely (trees gone, ports
 * free) before the next start, so two models never compete for the same GPUs (DESIGN 6, "--step all").
 *
 * <p>It is the client's {@link Endpoints}: each replica has its own URL and its own {@link ServerRecovery}. When
 * requests cannot reach a replica, the first caller checks whether it died and restarts it (within that replica's
 * budget); concurrent callers wait for that one restart (single flight, per replica), while new requests go to the
 * other replicas. A replica that cannot come back is dropped with one line, and the run goes on with the rest.
 */
public final class ServerSession implements Endpoints, AutoCloseable {
    private final ServerBackend backend;
    private final Function<String, List<ServerSpec>> specsFor;
    private final int restartBudget;
    private final Replica[] replicas;

    /**
     * One server per model.
     *
     * @param specFor       the spec that serves a model (profile, host, port from the command line)
     * @param restartBudget how many times a dead server may be restarted in this run
     */
    public ServerSession(ServerBackend backend, Function<String, ServerSpec> specFor, int restartBudget) {
        this(backend, 1, m -> List.of(specFor.apply(m)), restartBudget);
    }

    /**
     * {@code count} replicas per model.
     *
     * @param specsFor      the {@code count} specs that serve a model, one per replica (each its own port and placement)
     * @param restartBudget how many times each replica may be restarted in this run
     */
    public ServerSession(ServerBackend backend, int count, Function<String, List<ServerSpec>> specsFor, int restartBudget) {
        if (count < 1) {
            throw new IllegalArgumentException("count " + count);
        }
        this.backend = backend;
        this.specsFor = specsFor;
        this.restartBudget = restartBudget;
        this.replicas = new Replica[count];
        for (int i = 0; i < count; i++) {
            replicas[i] = new Replica(i);
        }
    }

    /**
     * Servers for the model, started (or reused) if needed; the previous model's are stopped first. Replicas start
     * in parallel and this returns when each is ready or has failed: a replica that failed is dropped with one line
     * and the run goes on with the others; only when none started is the first failure thrown.
     */
    public void serve(String model) throws ServerStartException, ForeignPortException, PortInUseException {
        synchronized (this) {
            if (model.equals(currentModel()) && allAliveOrDropped()) {
                return;
            }
            stopAll();
        }
        // Starts run outside the session's lock: a replica's recovery (under its own lock) must never wait on it.
        List<ServerSpec> specs = specsFor.apply(model);
        if (specs.size() != replicas.length) {
            throw new IllegalStateException(specs.size() + " specs for " + replicas.length + " replicas");
        }
        if (replicas.length == 1) {
            replicas[0].serving(model, backend.start(specs.getFirst()));
            return;
        }
        Exception[] failures = new Exception[replicas.length];
        RunningServer[] started = new RunningServer[replicas.length];
        try (var starts = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<RunningServer>> pending = new ArrayList<>();
            for (ServerSpec spec : specs) {
                pending.add(starts.submit(() -> backend.start(spec)));
            }
            for (int i = 0; i < replicas.length; i++) {
                try {
                    started[i] = awaitUninterruptibly(pending.get(i));
                } catch (ExecutionException e) {
                    failures[i] = e.getCause() instanceof Exception x ? x : new IllegalStateException(e.getCause());
                }
            }
        }
        int up = 0;
        for (int i = 0; i < replicas.length; i++) {
            replicas[i].serving(model, started[i]);
            if (started[i] != null) {
                up++;
            }
        }
        if (up == 0) {
            // The first failure is the run's exit line; the others are said here, each in one line.
            for (int i = 1; i < replicas.length; i++) {
                System.err.println("tether: " + replicas[i].name() + " failed to start too: " + failures[i].getMessage());
            }
            rethrow(failures[0]);
        }
        for (int i = 0; i < replicas.length; i++) {
            if (failures[i] != null) {
                System.err.println("tether: " + replicas[i].name() + " failed to start: " + failures[i].getMessage()
                        + "; the run goes on with " + up + (up == 1 ? " replica" : " replicas"));
            }
        }
    }

    /**
     * A start is never abandoned half way (its server would be nobody's): on Ctrl-C the backend's shutdown hook
     * stops what is starting, and the start then ends by itself.
     */
    private static <T> T awaitUninterruptibly(Future<T> future) throws ExecutionException {
        boolean interrupted = false;
        try {
            while (true) {
                try {
                    return future.get();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
        } finally {
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static void rethrow(Exception e) throws ServerStartException, ForeignPortException, PortInUseException {
        switch (e) {
            case ServerStartException x -> throw x;
            case ForeignPortException x -> throw x;
            case PortInUseException x -> throw x;
            case RuntimeException x -> throw x;
            default -> throw new IllegalStateException(e);
        }
    }

    private String currentModel() {
        for (Replica r : replicas) {
            if (r.model != null) {
                return r.model;
            }
        }
        return null;
    }

    private boolean allAliveOrDropped() {
        boolean anyAlive = false;
        for (Replica r : replicas) {
            if (r.current != null && r.current.isAlive()) {
                anyAlive = true;
            } else if (!r.dropped) {
                return false;
            }
        }
        return anyAlive;
    }

    /** The servers up now (the replicas not dropped). */
    public List<RunningServer> servers() {
        List<RunningServer> up = new ArrayList<>();
        for (Replica r : replicas) {
            if (r.current != null && !r.dropped) {
                up.add(r.current);
            }
        }
        return up;
    }

    /** The first replica's base URL (null before a start): for a lone server, its URL. */
    public String baseUrl() {
        return baseUrl(0);
    }

    /** Restarts used, over all replicas. */
    public int restartsUsed() {
        int used = 0;
        for (Replica r : replicas) {
            used += r.restartsUsed;
        }
        return used;
    }

    @Override
    public int count() {
        return replicas.length;
    }

    @Override
    public String baseUrl(int i) {
        Replica r = replicas[i];
        RunningServer server = r.current;
        return r.dropped || server == null ? null : server.baseUrl();
    }

    @Override
    public boolean recovering(int i) {
        return replicas[i].restarting;
    }

    @Override
    public ServerRecovery recovery(int i) {
        return replicas[i];
    }

    private int usable() {
        int n = 0;
        for (Replica r : replicas) {
            if (!r.dropped && r.current != null) {
                n++;
            }
        }
        return n;
    }

    /** Stops every replica's server at once (each tree with its own grace). */
    private synchronized void stopAll() {
        List<RunningServer> handles = new ArrayList<>();
        for (Replica r : replicas) {
            synchronized (r) {
                if (r.current != null) {
                    handles.add(r.current);
                }
                r.serving(null, null);
            }
        }
        if (!handles.isEmpty()) {
            RunningServer.stopAll(handles);
        }
    }

    @Override
    public void close() {
        stopAll();
    }

    /**
     * One replica: its server for the current model, its restart budget, and its recovery. Callers that fail
     * together queue on this replica's lock (the client's single flight is per replica too): the first decides by why the server ended, the rest then find it
     * running again (or the same end) and follow.
     */
    private final class Replica implements ServerRecovery {
        private final int index;
        // Written under this replica's lock, read without it: a restart of one replica (seconds, under its lock)
        // must not hold up requests picking another one.
        private volatile RunningServer current;
        private volatile String model;
        private volatile boolean dropped;
        private volatile int restartsUsed;
        private volatile boolean restarting;

        Replica(int index) {
            this.index = index;
        }

        synchronized void serving(String newModel, RunningServer handle) {
            model = handle == null && newModel == null ? null : newModel;
            current = handle;
            dropped = newModel != null && handle == null;   // a replica that failed to start
        }

        /** "the server for M" alone; "replica 2 of 3 for M" in a pool. */
        String name() {
            return (replicas.length == 1 ? "the server" : "replica " + (index + 1) + " of " + replicas.length)
                    + " for " + model;
        }

        /**
         * A server that runs is retried (slow, or a stale connection); one that crashed, lost its shim or hung is
         * restarted within the budget; one that was stopped from outside is not restarted: alone it ends the run
         * ({@link ServerStoppedException}), in a pool it is dropped while others are left; a shared server whose
         * owner stopped it is replaced by a server of this run's own (a takeover). Once the backend is closing
         * (Ctrl-C, SIGTERM, the run's end) nothing is restarted and nothing is said.
         */
        @Override
        public boolean recover(ClientException cause) throws InterruptedException {
            synchronized (this) {
                if (backend.closing()) {
                    throw new InterruptedException("the run is stopping");
                }
                if (current == null || dropped) {
                    return false;
                }
                RunningServer.End end = current.end();
                switch (end) {
                    case RUNNING, HUNG -> {
                        return true;   // alive: a slow or overloaded server, not a dead one; retry with back-off
                    }
                    case STOPPED -> {
                        return drop("it was stopped (no restart left)");   // stopped from here: the budget was spent
                    }
                    case STOPPED_OUTSIDE -> {
                        String who = "was stopped from outside by " + current.stoppedBy().orElse("someone");
                        if (replicas.length > 1 && usable() > 1) {
                            return drop("it " + who + "; it is not restarted");
                        }
                        throw new ServerStoppedException(name() + " (" + current.lease().id() + ") " + who
                                + "; it is not restarted, and the run ends here (re-run the same command to resume)");
                    }
                    case GONE -> {
                        return takeOver();
                    }
                    case EXITED, SHIM_LOST -> {
                        String why = end == RunningServer.End.SHIM_LOST ? "its shim died"
                                : current.exitCode().map(c -> "exit code " + c).orElse("no exit code");
                        if (!current.owned()) {
                            return false;
                        }
                        if (restartsUsed >= restartBudget) {
                            return drop("it is gone (" + why + ") and has no restart left (--restarts " + restartBudget + ")");
                        }
                        restartsUsed++;
                        System.err.println("tether: " + name() + " is gone (" + why + "); restarting it ("
                                + restartsUsed + " of " + restartBudget + " restarts)");
                        return restart();
                    }
                    default -> throw new IllegalStateException(end.toString());
                }
            }
        }

        /** Under the session's lock; new requests meanwhile go to the other replicas. */
        private boolean restart() {
            restarting = true;
            try {
                current.restart();
                return true;
            } catch (ServerStartException | ForeignPortException | PortInUseException e) {
                System.err.println("tether: the restart failed: " + e.getMessage());
                return drop("its restart failed");
            } finally {
                restarting = false;
            }
        }

        /**
         * This replica cannot come back: in a pool it is dropped with one line (once) and requests go to the rest;
         * alone, its requests fail (the run reports them as failure records), as before pools existed.
         */
        private boolean drop(String why) {
            if (replicas.length > 1 && !dropped) {
                dropped = true;
                int left = usable();
                System.err.println("tether: " + name() + " is dropped: " + why + "; the run goes on with " + left
                        + (left == 1 ? " replica" : " replicas"));
            }
            return false;
        }

        /**
         * The shared server ("Using running server") is gone: its owner stopped it. This run starts its own for the
         * same spec and goes on (if the owner restarts it first, the start simply uses it again).
         */
        private boolean takeOver() {
            RunningServer gone = current;
            System.err.println("tether: " + name() + " that this run shared with tether pid "
                    + gone.lease().owner().pid() + " was stopped by its owner; starting this run's own server for it");
            try {
                current = backend.start(specsFor.apply(gone.model()).get(index));
                return true;
            } catch (ServerStartException | ForeignPortException | PortInUseException e) {
                System.err.println("tether: the takeover failed: " + e.getMessage());
                current = null;
                return false;
            }
        }

        /**
         * Requests to this replica have got no answer for the hang timeout. A server whose health check still
         * answers is merely slow: nothing is done. One that does not answer is hung: it is restarted (within the
         * same budget as a dead one), which makes the requests in flight fail and retry; with the budget spent it
         * is stopped (and, in a pool, dropped), and they fail or go to the others.
         */
        @Override
        public void hung(Duration silence) throws InterruptedException {
            RunningServer server;
            synchronized (this) {
                server = current;
            }
            if (server == null || backend.closing() || !server.isAlive() || server.answersHealth()) {
                return;   // no server, a dead one (the requests' own recovery restarts it), or merely slow
            }
            synchronized (this) {
                if (current != server || backend.closing() || !server.isAlive()) {
                    return;
                }
                String what = name() + " is hung: no request got an answer for " + silence.toSeconds()
                        + " s and its health check did not answer either";
                if (!server.owned()) {
                    System.err.println("tether: " + what + "; it belongs to tether pid " + server.lease().owner().pid()
                            + ", which restarts it (or not): waiting");
                    return;
                }
                if (restartsUsed >= restartBudget) {
                    System.err.println("tether: " + what + "; no restart left (--restarts " + restartBudget + "): stopping it");
                    server.stop();
                    drop("it hung with no restart left");
                    return;
                }
                restartsUsed++;
                server.markHung();
                System.err.println("tether: " + what + "; restarting it (" + restartsUsed + " of " + restartBudget + " restarts)");
                restart();
            }
        }
    }
}
