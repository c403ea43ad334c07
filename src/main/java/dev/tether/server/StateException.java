package dev.tether.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;

/**
 * tether's state in {@code $TETHER_HOME} cannot be written (a full disk, a read-only file system, a file where a
 * directory belongs, no permission). The message is one line for the user: what, where, what to do.
 */
public final class StateException extends UncheckedIOException {
    public StateException(String what, Path home, IOException cause) {
        super(what + ": " + reason(cause) + "; free some space or fix " + home
                + ", or set TETHER_HOME to a writable directory", cause);
    }

    /** A failure already worded for the user (reported by a shim). */
    public StateException(String message) {
        super(message, new IOException(message));
    }

    static String reason(IOException e) {
        if (e instanceof FileAlreadyExistsException || e instanceof NotDirectoryException) {
            return "a file is in the way (" + e.getMessage() + ")";
        }
        if (e instanceof AccessDeniedException) {
            return "permission denied (" + e.getMessage() + ")";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m;
    }
}
