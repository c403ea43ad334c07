package dev.tether.proc;

import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;

/**
 * What a stop did, for logs and for the user: who got which signal when, who exited when, and who
 * could not be killed.
 *
 * @param complete   no member is alive (and, if a port was given, nothing listens on it)
 * @param unkillable members still alive at the end, most likely in uninterruptible sleep (state D)
 */
public record StopReport(List<Event> events, Duration elapsed, boolean complete,
                         List<ProcessIdentity> unkillable, boolean portFree) {

    public enum Action { TERM_SENT, KILL_SENT, EXITED, NOT_OURS, DENIED, UNKILLABLE }

    /** @param at time since the stop began */
    public record Event(Duration at, ProcessIdentity process, String command, Action action) {
        @Override
        public String toString() {
            return String.format("+%dms %s %s %s", at.toMillis(), action, process, command);
        }
    }

    public static StopReport nothingToStop() {
        return new StopReport(List.of(), Duration.ZERO, true, List.of(), true);
    }

    public List<Event> eventsOf(Action action) {
        return events.stream().filter(e -> e.action() == action).toList();
    }

    public boolean killedAnything() {
        return !eventsOf(Action.KILL_SENT).isEmpty();
    }

    /** One line: how many members, how long, whether SIGKILL was needed, who survived. */
    public String summary() {
        long members = events.stream().map(Event::process).distinct().count();
        StringBuilder line = new StringBuilder();
        line.append(members).append(members == 1 ? " process" : " processes")
                .append(" stopped in ").append(elapsed.toMillis()).append(" ms");
        int killed = eventsOf(Action.KILL_SENT).size();
        if (killed > 0) {
            line.append(" (").append(killed).append(" needed SIGKILL)");
        }
        if (!unkillable.isEmpty()) {
            line.append("; still alive, cannot be killed (uninterruptible sleep?): ")
                    .append(unkillable.stream().map(p -> "pid " + p.pid()).collect(Collectors.joining(", ")));
        }
        if (!portFree) {
            line.append("; the port still has a listener");
        }
        return line.toString();
    }
}
