package dev.tether.proc;

import java.util.Set;

/**
 * What makes a process a member of one managed tree (DESIGN 3.3). A process is a member when any of
 * these holds, and then so are all its descendants:
 * <ul>
 *   <li>it is the {@code root} (the server's leader);</li>
 *   <li>its parent is the {@code subreaper} (the server's shim, which adopts whatever escapes);</li>
 *   <li>its initial environment carries {@code TETHER_LEASE=<leaseId>};</li>
 *   <li>it is one of the {@code known} identities recorded earlier;</li>
 *   <li>it is in process group {@code pgid} while some other member is in that group too.</li>
 * </ul>
 * No single rule is enough: servers overwrite their environment for process titles, daemons leave the
 * group and the parent chain, and only the shim sees everything that escapes.
 *
 * @param leaseId   marker value, or null for none
 * @param root      the server's leader, or null when unknown
 * @param subreaper the per-server shim, or null
 * @param pgid      the server's process group, or 0 for none
 * @param known     identities recorded as members earlier
 */
public record Membership(String leaseId, ProcessIdentity root, ProcessIdentity subreaper, int pgid,
                         Set<ProcessIdentity> known) {

    public static final String LEASE_ENV = "TETHER_LEASE";

    public Membership {
        known = known == null ? Set.of() : Set.copyOf(known);
    }

    /** The tree of a process spawned by {@link Spawner}: its root, group and lease marker. */
    public static Membership of(Spawned spawned) {
        return new Membership(spawned.leaseId(), spawned.identity().orElse(null), null,
                spawned.identity().map(ProcessIdentity::pid).orElse(0), Set.of());
    }

    public Membership withKnown(Set<ProcessIdentity> more) {
        var all = new java.util.HashSet<>(known);
        all.addAll(more);
        return new Membership(leaseId, root, subreaper, pgid, all);
    }

    String markerEntry() {
        return leaseId == null ? null : LEASE_ENV + "=" + leaseId;
    }
}
