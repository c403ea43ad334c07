package dev.tether.server;

/** A port is held by a process tether does not manage (exit code 4 at the command line). */
public class ForeignPortException extends Exception {
    private final int port;
    private final PortInspector.Holder holder;

    public ForeignPortException(int port, PortInspector.Holder holder, boolean forced) {
        super(message(port, holder, forced));
        this.port = port;
        this.holder = holder;
    }

    /** A listener that cannot be attributed to any visible process. */
    public ForeignPortException(int port, String message) {
        super(message);
        this.port = port;
        this.holder = null;
    }

    public int port() {
        return port;
    }

    /** The holder, or null when it is not visible. */
    public PortInspector.Holder holder() {
        return holder;
    }

    private static String message(int port, PortInspector.Holder h, boolean forced) {
        String who = "port " + port + " is held by pid " + h.identity().pid() + " (user " + h.user() + "): "
                + abbreviate(h.command());
        if (forced) {
            return who + " — it belongs to another user, and tether only stops its own user's processes";
        }
        if (h.leaseId().isPresent()) {
            return who + " — a server of another home's tether (its lease " + h.leaseId().get() + " lives under another"
                    + " TETHER_HOME), so it is left alone; run tether with --port auto to use another port, or stop it"
                    + " with that home's tether";
        }
        return who + " — not started by tether, so it is left alone; run tether with --port auto to use another port,"
                + " or `tether port " + port + " --kill --force` to stop it";
    }

    static String abbreviate(String command) {
        return command.length() <= 160 ? command : command.substring(0, 157) + "...";
    }
}
