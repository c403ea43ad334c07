package dev.tether.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.ForksWorkers;
import dev.tether.fixtures.Worker;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.TreeStopper;
import dev.tether.server.Lease;
import dev.tether.server.Profile;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import dev.tether.testing.TestLease;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code tether port} run as a separate process against real listeners. */
class PortCommandTest {
    private static final Duration STARTUP = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    private Path home() {
        return dir.resolve("home");
    }

    @Test
    void nothingListeningIsSaidPlainly() throws Exception {
        int port = Fixture.freePort();
        var result = TetherCli.run(home(), "port", String.valueOf(port));
        assertThat(result.exitCode()).isZero();
        assertThat(result.out()).contains("Port " + port + ": nothing listens on it");
    }

    @ParameterizedTest
    @ValueSource(strings = {"abc", "0", "70000", "-5", "80.5"})
    void aBadPortIsOneLineAndExitTwo(String port) throws Exception {
        var result = TetherCli.run(home(), "port", port);
        assertThat(result.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(result.errLines()).hasSize(1);
        assertThat(result.errLines().getFirst()).startsWith("tether: port must be");
        assertThat(result.out()).isEmpty();
    }

    @Test
    void forceWithoutKillIsAUsageError() throws Exception {
        var result = TetherCli.run(home(), "port", "8000", "--force");
        assertThat(result.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(result.err()).contains("--force only goes with --kill");
    }

    @Test
    void aForeignListenerIsReportedAndNeverKilledWithoutForce(TestLease lease) throws Exception {
        int port = Fixture.freePort();
        // No lease marker: to tether this is somebody else's server.
        Spawned foreign = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", String.valueOf(port)),
                dir.resolve("foreign.log"), null));
        try {
            Fixture.awaitListening(port, STARTUP);

            var shown = TetherCli.run(home(), "port", String.valueOf(port));
            assertThat(shown.exitCode()).isZero();
            assertThat(shown.out()).contains("pid " + foreign.pid()).contains("not managed by tether")
                    .contains(Worker.class.getName());

            var refused = TetherCli.run(home(), "port", String.valueOf(port), "--kill");
            assertThat(refused.exitCode()).isEqualTo(ExitCode.PORT_HELD);
            assertThat(refused.errLines()).hasSize(1);
            assertThat(refused.err()).contains("pid " + foreign.pid()).contains("--port auto").contains("--kill --force");
            assertThat(foreign.process().isAlive()).isTrue();
            assertThat(PortListeners.isListening(port)).isTrue();

            var forced = TetherCli.run(home(), "port", String.valueOf(port), "--kill", "--force");
            assertThat(forced.exitCode()).as(forced.err()).isZero();
            assertThat(Poll.until(() -> !foreign.process().isAlive(), Duration.ofSeconds(10))).isTrue();
            assertThat(PortListeners.isListening(port)).isFalse();
        } finally {
            TreeStopper.stop(new ProcessTree(foreign.membership()), Duration.ofSeconds(2));
        }
    }

    @Test
    void aManagedServerIsStoppedWithItsWholeTree() throws Exception {
        int port = Fixture.freePort();
        // A real managed server (the seed's shape: a parent and forked workers, one listening), started
        // the way tether starts one: under its shim, with a lease in this TETHER_HOME. This JVM owns it.
        Profile forks = Profiles.command(String.join(" ",
                Fixture.command(ForksWorkers.class, "--port", "{port}", "--workers", "2")), null);
        try (ServerManager owner = new ServerManager(new TetherHome(home()), ServerEvents.NONE);
             ServerHandle server = owner.start(new ServerSpec("fixture", forks, "127.0.0.1", port, Duration.ofSeconds(5)))) {
            Lease lease = server.lease();
            ProcessTree tree = new ProcessTree(lease.membership());
            assertThat(Poll.until(() -> tree.members().size() == 3, STARTUP)).isTrue();

            var shown = TetherCli.run(home(), "port", String.valueOf(port));
            assertThat(shown.out()).contains("managed by tether (lease " + lease.id() + ")");

            var killed = TetherCli.run(home(), "port", String.valueOf(port), "--kill");
            assertThat(killed.exitCode()).as(killed.err()).isZero();
            assertThat(killed.out()).contains("Stopped " + lease.id());
            assertThat(tree.members()).isEmpty();
            assertThat(PortListeners.isListening(port)).isFalse();
            assertThat(lease.shim().isAlive()).isFalse();
            assertThat(home().resolve("leases").resolve(lease.id() + ".json")).doesNotExist();
            // Stopped through its shim, so the owner notices.
            server.onExit().get(STARTUP.toSeconds(), TimeUnit.SECONDS);
            assertThat(server.externalStopSummary()).isPresent();
        }
    }

    @Test
    void aMarkedListenerWithoutALeaseIsCalledAnOrphan(TestLease lease) throws Exception {
        int port = Fixture.freePort();
        Spawned orphan = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", String.valueOf(port)),
                dir.resolve("orphan.log"), lease.id()));
        try {
            Fixture.awaitListening(port, STARTUP);
            var shown = TetherCli.run(home(), "port", String.valueOf(port));
            assertThat(shown.out()).contains("orphan").contains(lease.id());
        } finally {
            TreeStopper.stop(new ProcessTree(orphan.membership()), Duration.ofSeconds(5));
        }
    }
}
