package dev.tether.proc;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Stops every member of a tree (DESIGN 3.4): snapshot; freeze (SIGSTOP the group and each member, scan
 * again, repeat until a scan finds nobody new, at most {@link #FREEZE_LIMIT}); SIGTERM the group and each
 * member while they are stopped, then SIGCONT them; poll until
 * all are gone or the grace runs out; SIGKILL whatever is left, including anything forked meanwhile;
 * poll until no member is alive and, when a port is given, nothing listens on it.
 *
 * <p>Why SIGSTOP and not a cgroup freezer: an unprivileged user has no delegated cgroup v2 subtree to
 * create one in (systemd delegates only to user services, not to a plain login shell or a container
 * process), and tether must work without root. A stopped process cannot fork, exit or change its
 * session, so the set found once the scans agree is complete; SIGTERM is then delivered to a tree that
 * cannot race the stopper. What a member forks in its SIGTERM handler after SIGCONT is found only while it
 * is still a member's child or still carries the marker; for the first 250 ms every poll round is a full
 * scan so that window is watched without gaps. The freeze cannot see a process that left before it.
 *
 * <p>Polling is cheap between full scans: each round re-reads only the stat of known members, and
 * a full /proc scan (which finds processes forked during the stop) runs every few rounds and once
 * more before declaring the tree gone.
 */
public final class TreeStopper {
    /** How long SIGKILLed processes get to disappear before they are reported as unkillable. */
    public static final Duration KILL_WAIT = Duration.ofSeconds(5);
    private static final long FULL_SCAN_EVERY_NANOS = 20_000_000;   // 20 ms
    /** A round between full scans reads one small file per known member: cheap enough to do often. */
    private static final Duration POLL_CEILING = Duration.ofMillis(2);

    private TreeStopper() {}

    public static StopReport stop(ProcessTree tree, Duration grace) {
        return stop(tree, grace, 0);
    }

    /**
     * @param port a port the tree listened on that must be free at the end, or 0 for none
     */
    public static StopReport stop(ProcessTree tree, Duration grace, int port) {
        Run run = new Run(tree, port);
        List<Member> snapshot = tree.members();
        if (snapshot.isEmpty()) {
            // Nothing of ours is alive; a listener left on the port is somebody else's: say so, touch nothing.
            boolean portFree = port == 0 || !PortListeners.isListening(port);
            return new StopReport(List.of(), Duration.ZERO, portFree, List.of(), portFree);
        }
        // Freeze first (see freeze()): nothing forks, escapes or exits while the members are found and signalled.
        List<Member> frozen = run.freeze(snapshot);
        run.signalAll(frozen, Signal.TERM);
        run.resume(frozen);
        boolean gone = Poll.until(() -> run.settled(Signal.TERM), grace, POLL_CEILING);
        if (!gone) {
            run.signalAll(tree.members(), Signal.KILL);
            Poll.until(() -> run.settled(Signal.KILL), KILL_WAIT, POLL_CEILING);
        }
        return run.report();
    }

    /** How long the freeze may take before the stop goes on with the members found so far. */
    public static final Duration FREEZE_LIMIT = Duration.ofSeconds(2);

    /** The freeze is always on; the constant marks the one place a test of its effect would turn it off. */
    private static final boolean FREEZE = true;
    /**
     * Right after SIGCONT the members run their SIGTERM handlers: what they fork now is found only while it is
     * still a member's child or still carries the marker, so for this long every round is a full scan.
     */
    private static final long WATCH_CLOSELY_NANOS = 250_000_000L;

    /** State of one stop: the members being watched and the events so far. */
    private static final class Run {
        private final ProcessTree tree;
        private final int port;
        private final long start = System.nanoTime();
        private final List<StopReport.Event> events = new ArrayList<>();
        private final Map<ProcessIdentity, String> watched = new LinkedHashMap<>();
        private final Set<ProcessIdentity> signalled = new HashSet<>();
        private long lastFullScan = 0;

        Run(ProcessTree tree, int port) {
            this.tree = tree;
            this.port = port;
        }

        private final Set<ProcessIdentity> frozen = new HashSet<>();

        /**
         * SIGSTOP every member (the group, then each by identity), wait until each is stopped or dead, scan
         * again, and repeat until a scan finds nobody new: a stopped process cannot fork, so the set is then
         * complete. Bounded by {@link #FREEZE_LIMIT}. Returns the members found.
         */
        List<Member> freeze(List<Member> members) {
            if (!FREEZE) {
                return members;
            }
            long deadline = System.nanoTime() + FREEZE_LIMIT.toNanos();
            List<Member> now = members;
            while (true) {
                boolean fresh = false;
                Membership m = tree.membership();
                if (m.pgid() > 0) {
                    now.stream().filter(x -> x.stat().pgrp() == m.pgid()).findFirst()
                            .ifPresent(w -> Signaller.sendToGroup(m.pgid(), w.identity(), Signal.STOP));
                }
                for (Member member : now) {
                    if (frozen.add(member.identity())) {
                        fresh = true;
                        Signaller.send(member.identity(), Signal.STOP);
                    }
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return now;
                }
                List<Member> current = now;
                Poll.until(() -> current.stream().allMatch(x -> ProcFs.stat(x.pid())
                        .map(st -> st.state() == 'T' || st.state() == 't' || st.isDead() || st.startTicks() != x.identity().startTicks())
                        .orElse(true)), Duration.ofNanos(Math.min(left, 100_000_000L)), Duration.ofMillis(1));
                List<Member> again = tree.members();
                boolean stable = !fresh && frozen.containsAll(again.stream().map(Member::identity).toList());
                if (stable || System.nanoTime() >= deadline) {
                    return again;
                }
                now = again;
            }
        }

        /** SIGCONT to everything frozen (with SIGTERM pending), so each member can handle it. */
        void resume(List<Member> members) {
            if (!FREEZE) {
                return;
            }
            Membership m = tree.membership();
            if (m.pgid() > 0) {
                members.stream().filter(x -> x.stat().pgrp() == m.pgid()).findFirst()
                        .ifPresent(w -> Signaller.sendToGroup(m.pgid(), w.identity(), Signal.CONT));
            }
            for (ProcessIdentity id : frozen) {
                Signaller.send(id, Signal.CONT);
            }
        }

        void signalAll(List<Member> members, Signal signal) {
            signalled.clear();
            Membership m = tree.membership();
            // The group first, so workers that fork right now are in it too; then every member not
            // in the group by identity.
            if (m.pgid() > 0) {
                List<Member> inGroup = members.stream().filter(x -> x.stat().pgrp() == m.pgid()).toList();
                if (!inGroup.isEmpty()
                        && Signaller.sendToGroup(m.pgid(), inGroup.getFirst().identity(), signal) == Signaller.Outcome.SENT) {
                    for (Member member : inGroup) {
                        watched.putIfAbsent(member.identity(), ProcFs.commandLine(member.pid()));
                        signalled.add(member.identity());
                        record(member.identity(), sentAction(signal));
                    }
                }
            }
            for (Member member : members) {
                signal(member, signal);
            }
            lastFullScan = System.nanoTime();
        }

        private static StopReport.Action sentAction(Signal signal) {
            return signal == Signal.KILL ? StopReport.Action.KILL_SENT : StopReport.Action.TERM_SENT;
        }

        private void signal(Member member, Signal signal) {
            watched.putIfAbsent(member.identity(), ProcFs.commandLine(member.pid()));
            if (!signalled.add(member.identity())) {
                return;
            }
            Signaller.Outcome outcome = Signaller.send(member.identity(), signal);
            StopReport.Action action = switch (outcome) {
                case SENT -> sentAction(signal);
                case GONE -> null;   // exited on its own (or from the group signal) just now
                case NOT_OURS -> StopReport.Action.NOT_OURS;
                case DENIED -> StopReport.Action.DENIED;
            };
            if (action != null) {
                record(member.identity(), action);
            }
        }

        /** One poll round: true when no member is alive and the port (if any) is free. */
        boolean settled(Signal signal) {
            watched.keySet().removeIf(id -> {
                if (id.isAlive()) {
                    return false;
                }
                record(id, StopReport.Action.EXITED);
                return true;
            });
            boolean due = System.nanoTime() - lastFullScan > FULL_SCAN_EVERY_NANOS
                    || System.nanoTime() - start < WATCH_CLOSELY_NANOS;
            if (!watched.isEmpty() && !due) {
                return false;
            }
            // Either all known members are gone (confirm with a full scan) or it is time for one.
            lastFullScan = System.nanoTime();
            List<Member> now = tree.members();
            for (Member late : now) {
                signal(late, signal);   // forked during the stop: same treatment
            }
            if (!now.isEmpty()) {
                return false;
            }
            return port == 0 || !PortListeners.isListening(port);
        }

        private void record(ProcessIdentity id, StopReport.Action action) {
            String command = watched.getOrDefault(id, "");
            events.add(new StopReport.Event(Duration.ofNanos(System.nanoTime() - start), id, command, action));
        }

        StopReport report() {
            List<Member> left = tree.members();
            List<ProcessIdentity> unkillable = new ArrayList<>();
            for (Member m : left) {
                unkillable.add(m.identity());
                record(m.identity(), StopReport.Action.UNKILLABLE);
            }
            boolean portFree = port == 0 || !PortListeners.isListening(port);
            return new StopReport(List.copyOf(events), Duration.ofNanos(System.nanoTime() - start),
                    left.isEmpty() && portFree, unkillable, portFree);
        }
    }
}
