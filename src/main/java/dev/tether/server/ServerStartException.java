package dev.tether.server;

/** The server did not become ready: it exited, its shim died, or the startup deadline passed. */
public class ServerStartException extends Exception {
    private final String logTail;

    public ServerStartException(String message, String logTail) {
        super(message);
        this.logTail = logTail == null ? "" : logTail;
    }

    /** The last lines of the server's log, for the user to see why. */
    public String logTail() {
        return logTail;
    }
}
