package dev.tether.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import dev.tether.fixtures.DaemonizesTwice;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.Worker;
import dev.tether.proc.Poll;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.Subreaper;
import dev.tether.proc.TreeStopper;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.io.TempDir;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.testkit.engine.EngineExecutionResults;
import org.junit.platform.testkit.engine.EngineTestKit;
import org.junit.platform.testkit.engine.Event;

/**
 * {@link LeakCheck} can fail a test: each case here runs one inner test class through the JUnit
 * test kit (the inner classes run only there, see {@link OnlyInsideLeakCheckTest}) and looks at how
 * it ended and what is left of its processes.
 */
class LeakCheckTest {
    static final String RUN_INNER = "tether.leakcheck.selftest";
    private static final Duration UP = Duration.ofSeconds(20);

    /** What the inner test started, for the outer test to check. */
    static volatile ProcessIdentity innerProcess;
    static volatile String innerLease;

    @Test
    void aTestThatLeavesItsWorkerRunningFailsNamingItAndTheWorkerIsKilled() {
        EngineExecutionResults results = runInner(LeavesAWorkerRunning.class);

        results.testEvents().assertStatistics(stats -> stats.started(1).failed(1).succeeded(0));
        Throwable failure = failureOf(results);
        assertThat(failure).isInstanceOf(AssertionError.class)
                .hasMessageContaining("pid " + innerProcess.pid() + " lease=" + innerLease)
                .hasMessageContaining("(descendant of the test JVM)")
                .hasMessageContaining(Worker.class.getName())
                .hasMessageContaining("left 1 process running (now SIGKILLed)");
        assertThat(innerProcess.isAlive()).as("the leaked worker was killed").isFalse();
    }

    @Test
    void aWorkerThatEscapedTheTreeIsFoundByItsLeaseMarker() {
        EngineExecutionResults results = runInner(LeavesADaemonRunning.class);

        results.testEvents().assertStatistics(stats -> stats.started(1).failed(1));
        Throwable failure = failureOf(results);
        assertThat(failure).hasMessageContaining("pid " + innerProcess.pid() + " lease=" + innerLease);
        if (!Subreaper.isSubreaper()) {
            // (A subreaper test JVM would have adopted the orphan: then it is a descendant again.)
            assertThat(failure).hasMessageContaining("(outside the test JVM's tree)");
        }
        assertThat(innerProcess.isAlive()).isFalse();
    }

    @Test
    void aTestThatStopsItsTreePasses() {
        EngineExecutionResults results = runInner(StopsItsWorker.class);

        results.testEvents().assertStatistics(stats -> stats.started(1).succeeded(1).failed(0));
        assertThat(innerProcess.isAlive()).isFalse();
    }

    @Test
    void aProcessWithSomebodyElsesLeaseIsLeftAlone() {
        Assumptions.assumeFalse(Subreaper.isSubreaper(),
                "this JVM is a subreaper: the orphan would be its descendant, which is a leak");
        Assumptions.assumeFalse(Boolean.getBoolean(LeakCheck.ANY_LEASE_PROPERTY), "every lease counts in this run");
        EngineExecutionResults results = runInner(LeavesAForeignDaemon.class);
        ProcessIdentity foreign = innerProcess;
        try {
            results.testEvents().assertStatistics(stats -> stats.started(1).succeeded(1));
            assertThat(foreign.isAlive()).as("not ours to kill").isTrue();
        } finally {
            Signaller.send(foreign, Signal.KILL);
            assertThat(Poll.until(() -> !foreign.isAlive(), Duration.ofSeconds(5))).isTrue();
        }
    }

    private static EngineExecutionResults runInner(Class<?> inner) {
        innerProcess = null;
        innerLease = null;
        return EngineTestKit.engine("junit-jupiter")
                .selectors(selectClass(inner))
                .configurationParameter(RUN_INNER, "true")
                .configurationParameter("junit.jupiter.extensions.autodetection.enabled", "true")
                .execute();
    }

    private static Throwable failureOf(EngineExecutionResults results) {
        Event failed = results.testEvents().failed().list().getFirst();
        return failed.getRequiredPayload(TestExecutionResult.class).getThrowable().orElseThrow();
    }

    /** Inner test classes run only when a test here runs them through the test kit. */
    static final class OnlyInsideLeakCheckTest implements ExecutionCondition {
        @Override
        public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
            return context.getConfigurationParameter(RUN_INNER).filter("true"::equals).isPresent()
                    ? ConditionEvaluationResult.enabled("run by LeakCheckTest")
                    : ConditionEvaluationResult.disabled("runs only inside LeakCheckTest");
        }
    }

    private static Spawned spawnWorker(Path dir, String lease) throws Exception {
        Path log = dir.resolve("worker.log");
        Spawned spawned = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", "0"), log, lease));
        innerProcess = spawned.identity().orElseThrow();
        innerLease = lease;
        Fixture.awaitReady(log, Worker.class, 1, UP);
        return spawned;
    }

    /** Starts a DaemonizesTwice, waits until only its orphaned worker is left, and returns. */
    private static void daemonize(Path dir, String lease) throws Exception {
        Path log = dir.resolve("daemon.log");
        int port = Fixture.freePort();
        Spawned spawned = Spawner.spawn(Spawner.Spec.of(
                Fixture.command(DaemonizesTwice.class, "--port", String.valueOf(port)), log, lease));
        assertThat(spawned.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(spawned.process().exitValue()).isZero();
        innerProcess = ProcessIdentity.of(Fixture.readyPids(log, Worker.class).getFirst()).orElseThrow();
        innerLease = lease;
        assertThat(ProcFs.environContains(innerProcess.pid(), "TETHER_LEASE=" + lease)).isTrue();
    }

    @ExtendWith(OnlyInsideLeakCheckTest.class)
    static class LeavesAWorkerRunning {
        @Test
        void startsAWorkerAndReturns(TestLease lease, @TempDir Path dir) throws Exception {
            spawnWorker(dir, lease.id());
        }
    }

    @ExtendWith(OnlyInsideLeakCheckTest.class)
    static class LeavesADaemonRunning {
        @Test
        void daemonizesAWorkerAndReturns(TestLease lease, @TempDir Path dir) throws Exception {
            daemonize(dir, lease.derived("daemon"));
        }
    }

    @ExtendWith(OnlyInsideLeakCheckTest.class)
    static class StopsItsWorker {
        @Test
        void startsAWorkerAndStopsIt(TestLease lease, @TempDir Path dir) throws Exception {
            Spawned spawned = spawnWorker(dir, lease.id());
            StopReport report = TreeStopper.stop(new ProcessTree(spawned.membership()), Duration.ofSeconds(5));
            assertThat(report.complete()).as(report.summary()).isTrue();
        }
    }

    @ExtendWith(OnlyInsideLeakCheckTest.class)
    static class LeavesAForeignDaemon {
        @Test
        void daemonizesAWorkerUnderALeaseNotIssuedHere(@TempDir Path dir) throws Exception {
            daemonize(dir, "someone-else-" + ProcessHandle.current().pid());
        }
    }
}
