package dev.tether.proc;

/**
 * Sends signals only to the process an identity names. On Linux 5.3+ this is race-free: a pidfd is
 * opened first (it pins that very process), the identity is re-read, and the signal goes through
 * the pidfd, so a pid recycled at any moment cannot receive it. Without pidfd support the identity
 * is re-read just before kill(2), which leaves only the microseconds between the two as a window.
 */
public final class Signaller {

    /** What happened to one signal. */
    public enum Outcome {
        /** Delivered to the process the identity names. */
        SENT,
        /** No such process any more (or already a zombie): nothing to do. */
        GONE,
        /** The pid now belongs to a different process: not signalled. */
        NOT_OURS,
        /** The kernel refused (EPERM): another user's process. */
        DENIED
    }

    private static volatile boolean pidfdMissing;

    private Signaller() {}

    public static Outcome send(ProcessIdentity target, Signal signal) {
        if (!pidfdMissing) {
            int fd = LibC.pidfdOpen(target.pid());
            if (fd >= 0) {
                try {
                    Outcome check = verify(target);
                    if (check != Outcome.SENT) {
                        return check;
                    }
                    if (LibC.pidfdSendSignal(fd, signal.number) == 0) {
                        return Outcome.SENT;
                    }
                    return failure(LibC.lastErrno());
                } finally {
                    LibC.close(fd);
                }
            }
            int errno = LibC.lastErrno();
            if (errno != LibC.ENOSYS) {
                return failure(errno);
            }
            pidfdMissing = true;
        }
        Outcome check = verify(target);
        if (check != Outcome.SENT) {
            return check;
        }
        return LibC.kill(target.pid(), signal.number) == 0 ? Outcome.SENT : failure(LibC.lastErrno());
    }

    /**
     * Signals a whole process group, but only while {@code witness} — a process we know to be ours —
     * is alive and still in that group: a group id cannot be reused while any member lives.
     */
    public static Outcome sendToGroup(int pgid, ProcessIdentity witness, Signal signal) {
        ProcStat stat = ProcFs.stat(witness.pid()).orElse(null);
        if (stat == null || !witness.matches(stat) || stat.isDead()) {
            return Outcome.GONE;
        }
        if (stat.pgrp() != pgid) {
            return Outcome.NOT_OURS;
        }
        return LibC.kill(-pgid, signal.number) == 0 ? Outcome.SENT : failure(LibC.lastErrno());
    }

    private static Outcome verify(ProcessIdentity target) {
        ProcStat stat = ProcFs.stat(target.pid()).orElse(null);
        if (stat == null) {
            return Outcome.GONE;
        }
        if (!target.matches(stat)) {
            return Outcome.NOT_OURS;
        }
        return stat.isDead() ? Outcome.GONE : Outcome.SENT;
    }

    private static Outcome failure(int errno) {
        return errno == LibC.EPERM ? Outcome.DENIED : Outcome.GONE;
    }
}
