package dev.tether.client;

/**
 * Thrown by a {@link ServerRecovery} hook when the run must end rather than fail its requests one by
 * one: the server was stopped on purpose from outside (for example by {@code tether stop}) and must
 * not be restarted. {@link OpenAiClient} lets it through as it is, never as a request's failure, so
 * no failure record is written for the work that was left.
 */
public final class ServerStoppedException extends RuntimeException {
    public ServerStoppedException(String message) {
        super(message, null, false, false);
    }
}
