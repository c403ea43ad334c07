package dev.tether.pipeline;

import dev.tether.client.ClientException;
import dev.tether.client.ServerRecovery;
import dev.tether.client.ServerStoppedException;
import dev.tether.server.ForeignPortException;
import dev.tether.server.PortInUseException;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.ServerStartException;
import java.time.Duration;
import java.util.function.Function;

/**
 * The server a run talks to, one model at a time. A step asks for its model; if another model's
 * server is up, that server is stopped completely (tree gone, port free) before the next starts, so
 * two models never compete for the same GPUs (DESIGN 6, "--step all").
 *
 * <p>It is also the client's {@link ServerRecovery}: when requests cannot reach the server, the first
 * caller checks whether the server died and restarts it (within a budget); concurrent callers wait
 * for that one restart instead of each starting their own (single flight).
 */
public final class ServerSession implements ServerRecovery, AutoCloseable {
    private final ServerManager manager;
    private final Function<String, ServerSpec> specFor;
    private final int restartBudget;
    private ServerHandle current;
    private int restartsUsed;

    /**
     * @param specFor       the spec that serves a model (profile, host, port from the command line)
     * @param restartBudget how many times a dead server may be restarted in this run
     */
    public ServerSession(ServerManager manager, Function<String, ServerSpec> specFor, int restartBudget) {
        this.manager = manager;
        this.specFor = specFor;
        this.restartBudget = restartBudget;
    }

    /** A server for the model, started (or reused) if needed; the previous model's server is stopped first. */
    public synchronized ServerHandle serve(String model)
            throws ServerStartException, ForeignPortException, PortInUseException {
        if (current != null && current.isAlive() && model.equals(current.model())) {
            return current;
        }
        if (current != null) {
            current.stop();
            current = null;
        }
        current = manager.start(specFor.apply(model));
        return current;
    }

    public synchronized String baseUrl() {
        return current == null ? null : current.baseUrl();
    }

    public synchronized int restartsUsed() {
        return restartsUsed;
    }

    /**
     * Callers that fail together queue on this lock: the first decides by why the server ended, the rest
     * then find it running again (or the same end) and follow. A server that runs is retried (slow, or a
     * stale connection); one that crashed, lost its shim or hung is restarted within the budget; one that
     * was stopped from outside ends the run ({@link ServerStoppedException}, never a restart); a shared
     * server whose owner stopped it is replaced by a server of this run's own (a takeover). Once the
     * manager is closing (Ctrl-C, SIGTERM, the run's end) nothing is restarted and nothing is said.
     */
    @Override
    public boolean recover(ClientException cause) throws InterruptedException {
        synchronized (this) {
            if (manager.closing()) {
                throw new InterruptedException("the run is stopping");
            }
            if (current == null) {
                return false;
            }
            ServerHandle.End end = current.end();
            switch (end) {
                case RUNNING, HUNG -> {
                    return true;   // alive: a slow or overloaded server, not a dead one; retry with back-off
                }
                case STOPPED -> {
                    return false;   // stopped from here (its restart budget was spent): the requests fail
                }
                case STOPPED_OUTSIDE -> throw new ServerStoppedException("the server for " + current.model() + " ("
                        + current.lease().id() + ") was stopped from outside by " + current.stoppedBy().orElse("someone")
                        + "; it is not restarted, and the run ends here (re-run the same command to resume)");
                case GONE -> {
                    return takeOver();
                }
                case EXITED, SHIM_LOST -> {
                    if (!current.owned() || restartsUsed >= restartBudget) {
                        return false;
                    }
                    restartsUsed++;
                    System.err.println("tether: the server for " + current.model() + " is gone ("
                            + (end == ServerHandle.End.SHIM_LOST ? "its shim died"
                                : current.exitCode().map(c -> "exit code " + c).orElse("no exit code"))
                            + "); restarting it (" + restartsUsed + " of " + restartBudget + " restarts)");
                    try {
                        current.restart();
                        return true;
                    } catch (ServerStartException | ForeignPortException | PortInUseException e) {
                        System.err.println("tether: the restart failed: " + e.getMessage());
                        return false;
                    }
                }
                default -> throw new IllegalStateException(end.toString());
            }
        }
    }

    /**
     * The shared server ("Using running server") is gone: its owner stopped it. This run starts its own
     * for the same spec and goes on (if the owner restarts it first, the start simply uses it again).
     */
    private boolean takeOver() {
        ServerHandle gone = current;
        System.err.println("tether: the server for " + gone.model() + " that this run shared with tether pid "
                + gone.lease().owner().pid() + " was stopped by its owner; starting this run's own server for it");
        try {
            current = manager.start(specFor.apply(gone.model()));
            return true;
        } catch (ServerStartException | ForeignPortException | PortInUseException e) {
            System.err.println("tether: the takeover failed: " + e.getMessage());
            current = null;
            return false;
        }
    }

    /**
     * Requests have got no answer for the hang timeout. A server whose health check still answers is
     * merely slow: nothing is done. One that does not answer is hung: it is restarted (within the same
     * budget as a dead one), which makes the requests in flight fail and retry on the new server; with
     * the budget spent it is stopped, and they fail.
     */
    @Override
    public void hung(Duration silence) throws InterruptedException {
        ServerHandle server;
        synchronized (this) {
            server = current;
        }
        if (server == null || manager.closing() || !server.isAlive() || server.answersHealth()) {
            return;   // no server, a dead one (the requests' own recovery restarts it), or merely slow
        }
        synchronized (this) {
            if (current != server || manager.closing() || !server.isAlive()) {
                return;
            }
            String what = "the server for " + server.model() + " is hung: no request got an answer for "
                    + silence.toSeconds() + " s and its health check did not answer either";
            if (!server.owned()) {
                System.err.println("tether: " + what + "; it belongs to tether pid " + server.lease().owner().pid()
                        + ", which restarts it (or not): waiting");
                return;
            }
            if (restartsUsed >= restartBudget) {
                System.err.println("tether: " + what + "; no restart left (--restarts " + restartBudget + "): stopping it");
                server.stop();
                return;
            }
            restartsUsed++;
            server.markHung();
            System.err.println("tether: " + what + "; restarting it (" + restartsUsed + " of " + restartBudget + " restarts)");
            try {
                server.restart();
            } catch (ServerStartException | ForeignPortException | PortInUseException e) {
                System.err.println("tether: the restart failed: " + e.getMessage());
            }
        }
    }

    @Override
    public synchronized void close() {
        if (current != null) {
            current.stop();
            current = null;
        }
    }
}
