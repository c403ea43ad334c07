package dev.tether.pipeline;

import dev.tether.client.ClientException;
import dev.tether.client.ServerRecovery;
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
     * Callers that fail together queue on this lock: the first restarts a dead server, the rest then
     * find it alive and simply retry.
     */
    @Override
    public boolean recover(ClientException cause) throws InterruptedException {
        synchronized (this) {
            if (current == null) {
                return false;
            }
            if (current.isAlive()) {
                return true;   // alive: a slow or overloaded server, not a dead one; retry with back-off
            }
            if (!current.owned() || restartsUsed >= restartBudget) {
                return false;
            }
            restartsUsed++;
            System.err.println("tether: the server for " + current.model() + " is gone ("
                    + current.exitCode().map(c -> "exit code " + c).orElse("no exit code") + "); restarting it ("
                    + restartsUsed + " of " + restartBudget + " restarts)");
            try {
                current.restart();
                return true;
            } catch (ServerStartException | ForeignPortException | PortInUseException e) {
                System.err.println("tether: the restart failed: " + e.getMessage());
                return false;
            }
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
        if (server == null || !server.isAlive() || server.answersHealth()) {
            return;   // no server, a dead one (the requests' own recovery restarts it), or merely slow
        }
        synchronized (this) {
            if (current != server || !server.isAlive()) {
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
