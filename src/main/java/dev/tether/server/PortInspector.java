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
import java.nio.file.Path;
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
        /** Carries a lease marker whose lease this home holds and can read: tether manages it, here. */
        MANAGED,
        /** Carries a lease marker whose lease file exists but does not parse (see {@link LeaseStore.Damaged}). */
        DAMAGED,
        /** Carries a lease marker but the lease is gone: left behind by a dead tether. */
        ORPHAN,
        /**
         * Not this home's to manage: no marker (somebody else's process), or a marker whose lease lives under
         * another {@code TETHER_HOME} (that home's tether manages it).
         */
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
                Ownership ownership = lease.map(l -> ownership(id.pid(), l)).orElse(Ownership.FOREIGN);
                holders.add(new Holder(id, ProcFs.userName(id.pid()), ProcFs.commandLine(id.pid()),
                        listener.address(), lease, ownership));
            }
        }
        return holders;
    }

    /** What a process carrying lease marker {@code leaseId} is to this home. */
    private Ownership ownership(int pid, String leaseId) {
        // A server started under another TETHER_HOME carries that home: its lease lives there.
        Path leaseHome = ProcFs.environValue(pid, TetherHome.ENV).map(Path::of).orElse(home.root());
        Path file = new TetherHome(leaseHome).leases().resolve(leaseId + ".json");
        if (!Files.exists(file)) {
            return Ownership.ORPHAN;   // its lease is gone, wherever it lived: a dead tether's leftover
        }
        if (!sameDirectory(leaseHome, home.root())) {
            return Ownership.FOREIGN;  // another home's live tether manages it: not ours to use or stop
        }
        return LeaseStore.isDamaged(file) ? Ownership.DAMAGED : Ownership.MANAGED;
    }

    private static boolean sameDirectory(Path a, Path b) {
        try {
            return Files.isSameFile(a, b);
        } catch (java.io.IOException e) {
            return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
        }
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
