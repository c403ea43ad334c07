package dev.tether.client;

/**
 * The client's way to ask "is the server still there?" when an attempt got no answer at all (a
 * connection error or a timeout — never for an HTTP error status). The pipeline's implementation
 * checks whether the server died and restarts it through the ServerManager, within its restart budget.
 *
 * <p>Implementations must be single-flight: when a server dies, every request in flight fails at
 * about the same moment and all of them call {@code recover} at once; only one restart may happen,
 * and the others must wait for it and share its outcome. {@link OpenAiClient} wraps its hook in
 * {@link #singleFlight} itself, which is enough while one client uses the hook; a hook shared by
 * several clients must be single-flight on its own (or be wrapped once and the wrapper shared).
 * Because a stale pooled connection or a slow answer also lands here, an implementation should first
 * check whether the server is in fact alive and healthy, and then just return true.
 */
@FunctionalInterface
public interface ServerRecovery {
    /**
     * Blocks until the server is usable again (restarting it if it died).
     *
     * @param cause the failed attempt
     * @return true to retry the request (it still counts one retry), false when the server is gone for
     *         good: the request then fails at once
     * @throws InterruptedException when the run is being stopped
     */
    boolean recover(ClientException cause) throws InterruptedException;

    /**
     * Requests are in flight and none has got an answer for the client's hang timeout: the server may
     * be hung (alive, listening, answering nothing). An implementation checks whether its health check
     * still answers — then the server is merely slow and nothing is done — and otherwise restarts it,
     * which makes the requests in flight fail and retry. The default does nothing.
     *
     * @param silence how long no request has got an answer
     * @throws InterruptedException when the run is being stopped
     */
    default void hung(java.time.Duration silence) throws InterruptedException {
    }

    /**
     * Serialises calls to {@code delegate}, and answers a failure whose attempt began before the last
     * recovery ended with that recovery's result instead of recovering again: such a failure was
     * caused by the server that recovery already replaced (or found gone).
     */
    static ServerRecovery singleFlight(ServerRecovery delegate) {
        return delegate instanceof SingleFlightRecovery ? delegate : new SingleFlightRecovery(delegate);
    }
}
