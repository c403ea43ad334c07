package dev.tether.server;

import dev.tether.proc.Poll;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcStat;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.StopReport;
import dev.tether.proc.TreeStopper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * The local backend's reaping: servers whose tether and shim are both gone (orphans), damaged lease files, and
 * listeners that carry the marker of a lease that no longer exists. Every stop goes through recorded identities
 * and the lease's marker (DESIGN 3): nothing without one is touched.
 */
final class Reaper {
    private final TetherHome home;
    private final LeaseStore store;
    private final ServerEvents events;

    Reaper(TetherHome home, LeaseStore store, ServerEvents events) {
        this.home = home;
        this.store = store;
        this.events = events;
    }

    /**
     * Stops every server whose owner and shim are both gone, damaged leases included (what they still
     * identify); returns the leases reaped (a damaged one as its salvaged lease).
     */
    List<Lease> reapAll() {
        try {
            return store.locked(() -> {
                List<Lease> reaped = new ArrayList<>();
                LeaseStore.Scan scan = store.scan();
                for (Lease lease : scan.leases()) {
                    if (ServerManager.BACKEND.equals(lease.backend()) && lease.isOrphan()) {
                        reapLease(lease);
                        reaped.add(lease);
                    }
                }
                reaped.addAll(reapDamaged(scan.damaged()));
                return reaped;
            });
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * A listener on the port with no lease: a process carrying the marker of a lease that no longer
     * exists is an orphan and is reaped; anything else is foreign and stops the start.
     */
    void reapUnleasedListeners(int port) throws ForeignPortException, PortInUseException {
        PortInspector inspector = new PortInspector(home);
        for (PortInspector.Holder holder : inspector.holders(port)) {
            if (holder.ownership() == PortInspector.Ownership.FOREIGN) {
                throw new ForeignPortException(port, holder, false);
            }
            if (holder.ownership() == PortInspector.Ownership.DAMAGED) {
                // Damaged leases of dead tethers were reaped just before: this one's tether or shim lives.
                throw new PortInUseException("port " + port + ": held by pid " + holder.identity().pid()
                        + " of a tether-managed server whose lease file " + store.path(holder.leaseId().orElseThrow())
                        + " is damaged; `tether stop --port " + port + "` stops it, or use --port auto");
            }
            if (holder.ownership() == PortInspector.Ownership.ORPHAN) {
                String id = holder.leaseId().orElseThrow();
                int pgid = ProcFs.stat(holder.identity().pid()).map(ProcStat::pgrp).orElse(0);
                Lease ghost = new Lease(id, null, "?", List.of(holder.command()), "", port, null, null, pgid, null, null,
                        Set.of(holder.identity()), null, null, 0, Lease.State.READY);
                reapLease(ghost);
            }
        }
    }

    /**
     * Damaged leases whose recorded tether and shim are both gone (or unreadable) are orphans: their trees
     * are stopped as far as they can be identified and the files moved aside. The others are said, not touched.
     */
    List<Lease> reapDamaged(List<LeaseStore.Damaged> damaged) {
        List<Lease> reaped = new ArrayList<>();
        for (LeaseStore.Damaged d : damaged) {
            Lease l = d.salvaged();
            if (l.isOrphan() && !shimRunsFor(d.id())) {
                StopReport report = stopTree(d);
                events.reapedDamaged(d, report, store.moveAside(d));
                reaped.add(l);
            } else {
                events.waiting("lease file " + d.file() + " is damaged (" + d.problem() + "), but its "
                        + (l.ownerAlive() ? "tether pid " + l.owner().pid() : l.shimAlive() ? "shim pid " + l.shim().pid() : "shim")
                        + " is alive; left alone (`tether stop " + d.id() + "` stops it)");
            }
        }
        return reaped;
    }

    /**
     * Whether a live shim manages lease {@code id}: a damaged file may have lost its owner and shim fields,
     * but a shim lives only as long as its tether (its watchdog), so while one runs for the id, the
     * server is managed and must not be reaped (found by ReadyMeansOursTest: a lease cut in half made the
     * next start reap a live tether's server).
     */
    private static boolean shimRunsFor(String id) {
        String shimClass = Shim.class.getName();
        for (int pid : ProcFs.pids()) {
            String command = ProcFs.commandLine(pid);
            if ((command.contains(shimClass) || command.contains(JobShim.class.getName())) && command.endsWith(" " + id)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Stops what a damaged lease still identifies (for {@code tether stop}, {@code tether port --kill}):
     * through its shim when a recorded shim lives, then every member found by the lease's marker, recorded
     * identities and group; moves the file aside. Never throws for what the file lacks.
     */
    String stopDamaged(LeaseStore.Damaged damaged) {
        StopReport report = stopTree(damaged);
        Optional<Path> moved = store.moveAside(damaged);
        return report.summary() + (moved.map(p -> "; damaged lease file moved to " + p)
                .orElse(Files.exists(damaged.file()) ? "; the damaged lease file " + damaged.file() + " could not be moved" : ""));
    }

    private StopReport stopTree(LeaseStore.Damaged damaged) {
        Lease l = damaged.salvaged();
        Duration grace = Duration.ofMillis(l.graceMillis() > 0 ? l.graceMillis() : 10_000);
        if (l.shimAlive() && Signaller.send(l.shim(), Signal.TERM) == Signaller.Outcome.SENT) {
            Poll.until(() -> !l.shim().isAlive(), grace.plus(TreeStopper.KILL_WAIT).plusSeconds(5), Duration.ofMillis(20));
        }
        return TreeStopper.stop(new ProcessTree(l.membership()), grace, l.port());
    }

    void reapLease(Lease lease) {
        StopReport report = TreeStopper.stop(new ProcessTree(lease.membership()),
                Duration.ofMillis(lease.graceMillis() > 0 ? lease.graceMillis() : 10_000), lease.port());
        store.remove(lease.id());
        events.reaped(lease, report);
    }
}
