package dev.tether.proc;

/** The POSIX signals tether sends, with their Linux numbers (CONT and STOP as on x86-64 and aarch64). */
public enum Signal {
    INT(2), KILL(9), TERM(15), CONT(18), STOP(19);

    public final int number;

    Signal(int number) {
        this.number = number;
    }

    /** Shell-style exit status of a process that died of this signal: 128 + n. */
    public int exitStatus() {
        return 128 + number;
    }
}
