package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcStat;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.StopReport;
import dev.tether.proc.TreeStopper;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Answers "who listens on port P, and is it ours?" and stops the owner when that is allowed
 * (DESIGN 1: a process tether does not manage is never killed silently).
 */
public final class PortInspector {

    /** How a listener relates to tether. */
    public enum Ownership {
        /** Carries a lease marker whose lease file exists: tether manages it. */
        MANAGED,
        /** Carries a lease marker whose lease file exists but does not parse (see {@link LeaseStore.Damaged}). */
        DAMAGED,
        /** Carries a lease marker but the lease is gone: left behind by a dead tether. */
        ORPHAN,
        /** No marker: somebody else's process. */
        FOREIGN
    }

    /** One process holding a listening socket on the port. */
    public record Holder(ProcessIdentity identity, String user, String command, String address,
                         Optional<String> leaseId, Ownership ownership) {}

    private final TetherHome home;

    public PortInspector(TetherHome home) {
        this.home = home;
    }

    public List<Holder> holders(int port) {
        List<Holder> holders = new ArrayList<>();
        for (PortListeners.Listener listener : PortListeners.find(port)) {
            for (ProcessIdentity id : listener.holders()) {
                Optional<String> lease = ProcFs.environValue(id.pid(), Membership.LEASE_ENV);
                // A server started under another TETHER_HOME carries that home: its lease lives there.
                TetherHome leaseHome = ProcFs.environValue(id.pid(), TetherHome.ENV)
                        .map(h -> new TetherHome(java.nio.file.Path.of(h))).orElse(home);
                Ownership ownership = lease.map(l -> ownership(leaseHome.leases().resolve(l + ".json")))
                        .orElse(Ownership.FOREIGN);
                holders.add(new Holder(id, ProcFs.userName(id.pid()), ProcFs.commandLine(id.pid()),
                        listener.address(), lease, ownership));
            }
        }
        return holders;
    }

    private static Ownership ownership(java.nio.file.Path leaseFile) {
        if (!Files.exists(leaseFile)) {
            return Ownership.ORPHAN;
        }
        return LeaseStore.isDamaged(leaseFile) ? Ownership.DAMAGED : Ownership.MANAGED;
    }

    /**
     * Stops what listens on the port. Processes carrying a lease marker are stopped with their whole
     * tree (everything with the same marker, their group and descendants). A foreign holder is stopped
     * (with its descendants, never its group, which may be the user's shell job) only when
     * {@code force} is set and it belongs to the current user.
     *
     * @throws ForeignPortException when a holder may not be stopped; nothing has been signalled then
     */
    public StopReport kill(int port, boolean force, Duration grace) throws ForeignPortException {
        List<Holder> holders = holders(port);
        int me = dev.tether.proc.LibC.getuid();
        for (Holder h : holders) {
            if (h.ownership() == Ownership.FOREIGN && (!force || h.identity().uid() != me)) {
                throw new ForeignPortException(port, h, force);
            }
        }
        List<StopReport> reports = new ArrayList<>();
        Set<String> leases = new LinkedHashSet<>();
        Set<ProcessIdentity> foreign = new LinkedHashSet<>();
        for (Holder h : holders) {
            h.leaseId().ifPresentOrElse(leases::add, () -> foreign.add(h.identity()));
        }
        for (String lease : leases) {
            int pgid = holders.stream().filter(h -> h.leaseId().orElse("").equals(lease)).findFirst()
                    .flatMap(h -> ProcFs.stat(h.identity().pid())).map(ProcStat::pgrp).orElse(0);
            reports.add(TreeStopper.stop(new ProcessTree(new Membership(lease, null, null, pgid, Set.of())), grace));
        }
        if (!foreign.isEmpty()) {
            reports.add(TreeStopper.stop(new ProcessTree(new Membership(null, null, null, 0, foreign)), grace));
        }
        return merge(reports, port);
    }

    private static StopReport merge(List<StopReport> reports, int port) {
        if (reports.isEmpty()) {
            return StopReport.nothingToStop();
        }
        List<StopReport.Event> events = new ArrayList<>();
        List<ProcessIdentity> unkillable = new ArrayList<>();
        Duration elapsed = Duration.ZERO;
        for (StopReport r : reports) {
            events.addAll(r.events());
            unkillable.addAll(r.unkillable());
            elapsed = elapsed.plus(r.elapsed());
        }
        boolean portFree = dev.tether.proc.Poll.until(() -> !PortListeners.isListening(port), Duration.ofSeconds(2));
        return new StopReport(events, elapsed, unkillable.isEmpty() && portFree, unkillable, portFree);
    }
}
