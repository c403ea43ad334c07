package dev.tether.pipeline;

/** Bad input data or options (file:line and what is wrong): exit code 2, nothing sent to a server. */
public class InputException extends Exception {
    public InputException(String message) {
        super(message);
    }
}
