package dev.tether.proc;

/** One live member of a tree as seen by one scan. */
public record Member(ProcessIdentity identity, ProcStat stat) {
    public int pid() {
        return identity.pid();
    }
}
