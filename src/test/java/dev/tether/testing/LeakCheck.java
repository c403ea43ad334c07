package dev.tether.testing;

import dev.tether.proc.Membership;
import dev.tether.proc.Poll;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcStat;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * Fails any test that leaves a process running, and kills what it left so later tests start clean.
 * Registered for every test through {@code META-INF/services} and extension autodetection.
 *
 * <p>Before each test (and each test class, for what {@code @BeforeAll}/{@code @AfterAll} do) it
 * records the identities of the live processes that descend from this JVM or carry a
 * {@code TETHER_LEASE} marker. Afterwards, a live (non-zombie) process not recorded before is a leak
 * when it
 * <ul>
 *   <li>descends from this JVM, or</li>
 *   <li>carries {@code TETHER_LEASE=<v>} where v is a {@link TestLease} id issued in this JVM (or
 *       derived from one) — a process that escaped the tree, by setsid or a double fork, still
 *       carries it.</li>
 * </ul>
 * Markers with other values are left alone by default, so two test runs on one machine (or a real
 * tether serving models meanwhile) never kill each other's processes; {@code
 * -Dtether.leakcheck.anyLease=true} counts every marker value except this JVM's own. Each leak is
 * SIGKILLed by identity, the check waits until they are gone, and the test fails with one message
 * naming pid, lease and command line of each.
 *
 * <p>Blind spot: a process that both left this JVM's tree and dropped its environment (see
 * {@code ScrubsEnvironment}) is invisible here once its parent is gone, as it is to tether without a
 * shim.
 */
public final class LeakCheck implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback,
        AfterEachCallback, ParameterResolver {

    /** Widens the marker rule to every lease value (only safe when nothing else uses tether on this machine). */
    public static final String ANY_LEASE_PROPERTY = "tether.leakcheck.anyLease";
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(LeakCheck.class);
    private static final String BEFORE = "processes-before";
    private static final Duration KILL_DEADLINE = Duration.ofSeconds(5);

    /** One candidate process as seen by a scan. */
    record Seen(ProcessIdentity identity, String lease, boolean descendant) {}

    @Override
    public void beforeAll(ExtensionContext context) {
        context.getStore(NAMESPACE).put(BEFORE, identities(scan()));
    }

    @Override
    public void afterAll(ExtensionContext context) {
        check(context, "@BeforeAll/@AfterAll of " + context.getDisplayName());
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        context.getStore(NAMESPACE).put(BEFORE, identities(scan()));
    }

    @Override
    public void afterEach(ExtensionContext context) {
        check(context, context.getDisplayName());
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == TestLease.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        // One lease per test: the test method and its @BeforeEach/@AfterEach methods share it.
        return context.getStore(NAMESPACE).getOrComputeIfAbsent("lease", k -> TestLease.issue(), TestLease.class);
    }

    @SuppressWarnings("unchecked")
    private static void check(ExtensionContext context, String what) {
        Object stored = context.getStore(NAMESPACE).get(BEFORE);
        if (!(stored instanceof Set<?>)) {
            return;   // the before-callback did not run (another extension failed first)
        }
        Set<ProcessIdentity> before = (Set<ProcessIdentity>) stored;
        List<Seen> leaks = leaks(before);
        if (leaks.isEmpty()) {
            return;
        }
        throw new AssertionError(killAndDescribe(what, leaks));
    }

    /** Live processes that count as this test's and were not there before. */
    static List<Seen> leaks(Set<ProcessIdentity> before) {
        boolean anyLease = Boolean.getBoolean(ANY_LEASE_PROPERTY);
        String ownLease = ProcFs.environValue(self(), Membership.LEASE_ENV).orElse(null);
        List<Seen> leaks = new ArrayList<>();
        for (Seen s : scan()) {
            if (before.contains(s.identity())) {
                continue;
            }
            boolean marked = s.lease() != null && !s.lease().equals(ownLease)
                    && (anyLease || TestLease.issuedHere(s.lease()));
            if (s.descendant() || marked) {
                leaks.add(s);
            }
        }
        return leaks;
    }

    /** SIGKILLs the leaks, waits for them to go, and says what they were. */
    static String killAndDescribe(String what, List<Seen> leaks) {
        // Read the command lines first: a killed process has none.
        Map<ProcessIdentity, String> commands = new HashMap<>();
        for (Seen s : leaks) {
            commands.put(s.identity(), ProcFs.commandLine(s.identity().pid()));
        }
        for (Seen s : leaks) {
            Signaller.send(s.identity(), Signal.KILL);
        }
        Poll.until(() -> leaks.stream().noneMatch(s -> s.identity().isAlive()), KILL_DEADLINE);

        StringBuilder message = new StringBuilder();
        message.append(what).append(" left ").append(leaks.size())
                .append(leaks.size() == 1 ? " process" : " processes").append(" running (now SIGKILLed):");
        for (Seen s : leaks) {
            message.append("\n  pid ").append(s.identity().pid())
                    .append(" lease=").append(s.lease() == null ? "<none>" : s.lease())
                    .append(s.descendant() ? " (descendant of the test JVM)" : " (outside the test JVM's tree)")
                    .append(s.identity().isAlive() ? " STILL ALIVE after SIGKILL" : "")
                    .append(": ").append(commands.get(s.identity()));
        }
        return message.toString();
    }

    private static Set<ProcessIdentity> identities(List<Seen> seen) {
        Set<ProcessIdentity> ids = new HashSet<>();
        seen.forEach(s -> ids.add(s.identity()));
        return ids;
    }

    private static int self() {
        return (int) ProcessHandle.current().pid();
    }

    /** Every live process (this JVM excluded) that descends from this JVM or carries any lease marker. */
    static List<Seen> scan() {
        int self = self();
        Map<Integer, ProcStat> live = new HashMap<>();
        Map<Integer, List<Integer>> children = new HashMap<>();
        for (int pid : ProcFs.pids()) {
            ProcFs.stat(pid).filter(s -> !s.isDead()).ifPresent(s -> {
                live.put(pid, s);
                children.computeIfAbsent(s.ppid(), k -> new ArrayList<>()).add(pid);
            });
        }
        Set<Integer> descendants = new HashSet<>();
        ArrayDeque<Integer> queue = new ArrayDeque<>(children.getOrDefault(self, List.of()));
        while (!queue.isEmpty()) {
            int pid = queue.poll();
            if (descendants.add(pid)) {
                queue.addAll(children.getOrDefault(pid, List.of()));
            }
        }
        List<Seen> seen = new ArrayList<>();
        for (ProcStat stat : live.values()) {
            int pid = stat.pid();
            if (pid == self) {
                continue;
            }
            String lease = ProcFs.environValue(pid, Membership.LEASE_ENV).orElse(null);
            boolean descendant = descendants.contains(pid);
            if (lease == null && !descendant) {
                continue;
            }
            Optional<ProcessIdentity> id = ProcessIdentity.of(pid);
            if (id.isPresent() && id.get().startTicks() == stat.startTicks()) {
                seen.add(new Seen(id.get(), lease, descendant));
            }
        }
        return seen;
    }
}
