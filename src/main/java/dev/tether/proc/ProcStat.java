package dev.tether.proc;

/**
 * The fields tether needs from {@code /proc/<pid>/stat}.
 *
 * @param state      one letter: R, S, D (uninterruptible), Z (zombie), T, t, X, I ...
 * @param startTicks start time after boot in clock ticks (field 22): with the pid and boot id it
 *                   names one process for the life of the machine
 */
public record ProcStat(int pid, String comm, char state, int ppid, int pgrp, int session, long startTicks) {

    /** A zombie (or a dead entry not yet gone) has exited: it is not "alive" for any purpose of tether's. */
    public boolean isDead() {
        return state == 'Z' || state == 'X' || state == 'x';
    }

    public boolean isUninterruptible() {
        return state == 'D';
    }

    /**
     * Parses one stat line. The command name sits in parentheses and may itself contain spaces and
     * parentheses, so fields are counted from the last ')'.
     */
    public static ProcStat parse(String line) {
        int open = line.indexOf('(');
        int close = line.lastIndexOf(')');
        if (open < 0 || close < open) {
            throw new IllegalArgumentException("not a /proc stat line: " + line);
        }
        int pid = Integer.parseInt(line.substring(0, open).trim());
        String comm = line.substring(open + 1, close);
        String[] rest = line.substring(close + 2).split(" ");
        // rest[0] is field 3 (state); field n is rest[n - 3].
        return new ProcStat(pid, comm, rest[0].charAt(0),
                Integer.parseInt(rest[1]), Integer.parseInt(rest[2]), Integer.parseInt(rest[3]),
                Long.parseLong(rest[19]));
    }
}
