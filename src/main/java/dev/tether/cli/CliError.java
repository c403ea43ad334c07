package dev.tether.cli;

/** An expected failure: printed as one line "tether: message" with no stack trace, then exit with code. */
public class CliError extends RuntimeException {
    private final int exitCode;

    public CliError(int exitCode, String message) {
        super(message);
        this.exitCode = exitCode;
    }

    public CliError(int exitCode, String message, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
    }

    public int exitCode() {
        return exitCode;
    }

    public static CliError usage(String message) {
        return new CliError(ExitCode.USAGE, message);
    }
}
