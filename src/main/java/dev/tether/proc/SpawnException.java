package dev.tether.proc;

/** A command could not be started at all (missing executable, unwritable log): nothing is running. */
public class SpawnException extends Exception {
    public SpawnException(String message) {
        super(message);
    }

    public SpawnException(String message, Throwable cause) {
        super(message, cause);
    }
}
