package dev.tether.proc;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.util.Optional;

/**
 * One process for the life of the machine: a pid alone is reused, but pid + start time + boot id is
 * not. The uid is recorded so that a report can say whose process it was.
 *
 * <p>Every signal tether sends is preceded by {@link #isAlive()}-style re-reading of these fields
 * (see {@link Signaller}); a process whose fields differ is somebody else's and is left alone.
 */
public record ProcessIdentity(int pid, long startTicks, String bootId, int uid) {

    /** Reads the identity of whatever process has this pid now, if any. */
    public static Optional<ProcessIdentity> of(int pid) {
        return ProcFs.stat(pid).flatMap(stat -> ProcFs.uid(pid)
                .map(uid -> new ProcessIdentity(pid, stat.startTicks(), ProcFs.bootId(), uid)));
    }

    public static ProcessIdentity current() {
        return of((int) ProcessHandle.current().pid())
                .orElseThrow(() -> new IllegalStateException("cannot read /proc/self"));
    }

    /** Same process as the one running now under this pid (a zombie counts as the same process). */
    @JsonIgnore
    public boolean isCurrent() {
        return ProcFs.stat(pid).map(this::matches).orElse(false);
    }

    /** The process exists, is this one, and has not exited (a zombie is dead). */
    @JsonIgnore
    public boolean isAlive() {
        return ProcFs.stat(pid).map(stat -> matches(stat) && !stat.isDead()).orElse(false);
    }

    boolean matches(ProcStat stat) {
        return stat.pid() == pid && stat.startTicks() == startTicks && bootId.equals(ProcFs.bootId());
    }

    @Override
    public String toString() {
        return "pid " + pid + " (start " + startTicks + ")";
    }
}
