package dev.tether.cli;

import static dev.tether.cli.TetherHomes.UP;
import static dev.tether.cli.TetherHomes.healthServer;
import static org.assertj.core.api.Assertions.assertThat;


import dev.tether.fixtures.Fixture;
import dev.tether.server.Lease;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tether logs}: a server's output, as its shim wrote it; {@code -f} follows until the server stops. */
class LogsCommandTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private BackgroundTether follower;

    private Path home() {
        return dir.resolve("home");
    }

    @Test
    void logsPrintsTheServersOutputByIdByPortAndAfterItStopped() throws Exception {
        int port = Fixture.freePort();
        try (ServerManager owner = new ServerManager(new TetherHome(home()), ServerEvents.NONE)) {
            ServerHandle server = owner.start(new ServerSpec("m", Profiles.command(healthServer(), "/health"),
                    "127.0.0.1", port, Duration.ofSeconds(5)));
            Lease lease = server.lease();
            String readyLine = "ready HealthServer pid=" + lease.server().pid();
            Fixture.awaitReady(Path.of(lease.logPath()), dev.tether.fixtures.HealthServer.class, 1, UP);

            var byId = TetherCli.run(home(), "logs", lease.id());
            assertThat(byId.exitCode()).as(byId.err()).isZero();
            assertThat(byId.out()).contains(readyLine);

            var byPort = TetherCli.run(home(), "logs", "--port", String.valueOf(port));
            assertThat(byPort.exitCode()).as(byPort.err()).isZero();
            assertThat(byPort.out()).contains(readyLine);

            // Follow while it runs; the follower ends by itself when the server stops.
            follower = tethers.start(null, "logs", "-f", lease.id());
            follower.awaitLine(readyLine, UP);
            server.stop();
            assertThat(follower.awaitExit(UP)).isZero();
            assertThat(follower.out()).contains("[tether] server stopped");

            var afterwards = TetherCli.run(home(), "logs", lease.id());
            assertThat(afterwards.exitCode()).as(afterwards.err()).isZero();
            assertThat(afterwards.out()).contains(readyLine).contains("[tether] server stopped");
        }
    }

    @Test
    void anUnknownServerIsAUsageError() throws Exception {
        var byId = TetherCli.run(home(), "logs", "t-nothing");
        assertThat(byId.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(byId.errLines()).hasSize(1);
        assertThat(byId.err()).contains("no log for server t-nothing");

        int port = Fixture.freePort();
        var byPort = TetherCli.run(home(), "logs", "--port", String.valueOf(port));
        assertThat(byPort.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(byPort.errLines()).hasSize(1);
        assertThat(byPort.err()).contains("no tether-managed server on port " + port);
    }
}
