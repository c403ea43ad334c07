package dev.tether.server;

/** The port is in use by a tether-managed server that cannot be shared (another model, another profile). */
public class PortInUseException extends Exception {
    public PortInUseException(String message) {
        super(message);
    }
}
