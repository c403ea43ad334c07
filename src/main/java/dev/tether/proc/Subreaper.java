package dev.tether.proc;

import java.util.function.IntPredicate;

/**
 * Makes the current process a child subreaper (prctl PR_SET_CHILD_SUBREAPER): every process that
 * leaves a descendant's tree — by setsid, a double fork or daemonizing — is re-parented here instead
 * of to init, so the tree's members stay findable. In tether this is the per-server shim (DESIGN 3.3).
 *
 * <p>A subreaper inherits the duty to reap what it adopts. A JVM must not call waitpid(-1) (its own
 * reaper thread waits for the children it spawned), so {@link #reapAdoptedZombies} reaps one
 * specific pid at a time, skipping the children Java itself started.
 */
public final class Subreaper {
    private Subreaper() {}

    /** @return whether the kernel accepted it (Linux 3.4+) */
    public static boolean become() {
        return LibC.prctl(LibC.PR_SET_CHILD_SUBREAPER, 1) == 0;
    }

    public static boolean isSubreaper() {
        return LibC.isChildSubreaper();
    }

    /**
     * Reaps zombie children of this process that Java did not spawn.
     *
     * @param spawnedByJava pids of children started through {@link ProcessBuilder}; Java reaps those
     * @return how many were reaped
     */
    public static int reapAdoptedZombies(IntPredicate spawnedByJava) {
        int self = (int) ProcessHandle.current().pid();
        int reaped = 0;
        for (int pid : ProcFs.pids()) {
            if (spawnedByJava.test(pid)) {
                continue;
            }
            ProcStat stat = ProcFs.stat(pid).orElse(null);
            if (stat != null && stat.ppid() == self && stat.isDead() && LibC.waitpidNoHang(pid) == pid) {
                reaped++;
            }
        }
        return reaped;
    }
}
