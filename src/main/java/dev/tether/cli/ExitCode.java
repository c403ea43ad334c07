package dev.tether.cli;

/** The exit codes of DESIGN 1 (a contract: scripts test them). */
public final class ExitCode {
    public static final int OK = 0;
    /** The job ran but failed (some records failed, or a step could not complete). */
    public static final int JOB_FAILED = 1;
    /** Bad command line, configuration or input data: nothing was started. */
    public static final int USAGE = 2;
    /** The server did not start; the message carries the end of its log. */
    public static final int SERVER_FAILED = 3;
    /** The port is held by a process tether does not manage. */
    public static final int PORT_HELD = 4;
    /** Stopped by SIGHUP (the terminal hung up), after the server tree was gone. */
    public static final int HANGUP = 129;
    /** Stopped by SIGINT (Ctrl-C), after the server tree was gone. */
    public static final int INTERRUPTED = 130;
    /** Stopped by SIGTERM, after the server tree was gone. */
    public static final int TERMINATED = 143;

    private ExitCode() {}
}
