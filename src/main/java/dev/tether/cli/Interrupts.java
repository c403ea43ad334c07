package dev.tether.cli;

import java.io.PrintWriter;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * SIGINT, SIGTERM and SIGHUP: say what is happening, then exit with 130, 143 or 129. The exit runs
 * the JVM's shutdown hooks, among them the server manager's, which stops every server tree first.
 */
final class Interrupts {
    private static final AtomicBoolean EXITING = new AtomicBoolean();

    private Interrupts() {}

    /** A signal arrived and the exit (with its server stops) is under way. */
    static boolean exiting() {
        return EXITING.get();
    }

    @SuppressWarnings("removal")
    static void install(PrintWriter err) {
        for (String name : new String[] {"INT", "TERM", "HUP"}) {
            int code = switch (name) {
                case "INT" -> ExitCode.INTERRUPTED;
                case "HUP" -> ExitCode.HANGUP;
                default -> ExitCode.TERMINATED;
            };
            String what = name.equals("HUP") ? " (hangup: the terminal or session went away)" : "";
            sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> {
                if (EXITING.compareAndSet(false, true)) {
                    err.println("tether: SIG" + name + " received" + what + ": stopping servers, then exiting with " + code);
                    err.flush();
                    // System.exit blocks until the hooks finish: never on the signal dispatcher thread.
                    Thread.ofPlatform().name("tether-exit").start(() -> System.exit(code));
                }
            });
        }
    }
}
