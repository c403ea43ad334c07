package dev.tether.cli;

import java.io.PrintWriter;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * SIGINT and SIGTERM: say what is happening, then exit with 130 or 143. The exit runs the JVM's
 * shutdown hooks, among them the server manager's, which stops every server tree first.
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
        for (String name : new String[] {"INT", "TERM"}) {
            int code = name.equals("INT") ? ExitCode.INTERRUPTED : ExitCode.TERMINATED;
            sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> {
                if (EXITING.compareAndSet(false, true)) {
                    err.println("tether: SIG" + name + " received: stopping servers, then exiting with " + code);
                    err.flush();
                    // System.exit blocks until the hooks finish: never on the signal dispatcher thread.
                    Thread.ofPlatform().name("tether-exit").start(() -> System.exit(code));
                }
            });
        }
    }
}
