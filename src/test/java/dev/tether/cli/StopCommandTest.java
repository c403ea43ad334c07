package dev.tether.cli;

import static dev.tether.cli.TetherHomes.UP;
import static dev.tether.cli.TetherHomes.assertServerGone;
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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tether stop}: a server owned by another live tether is stopped through its shim, and that
 * owner notices ("stopped from outside") and ends its run.
 */
class StopCommandTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private BackgroundTether serve;

    private Path home() {
        return dir.resolve("home");
    }

    private static ServerSpec spec(String model, int port) {
        return new ServerSpec(model, Profiles.command(healthServer(), "/health"), "127.0.0.1", port, Duration.ofSeconds(5));
    }

    @Test
    void stopByIdEndsTheServeThatOwnsIt() throws Exception {
        int port = Fixture.freePort();
        serve = tethers.start(null, "serve", "--command", healthServer(), "--port", String.valueOf(port));
        Lease lease = serve.awaitReady();

        var stopped = TetherCli.run(home(), "stop", lease.id());

        assertThat(stopped.exitCode()).as(stopped.err()).isZero();
        assertThat(stopped.out()).startsWith("Stopped " + lease.id()).contains("port " + port);
        assertServerGone(home(), lease);   // stop returns only once the tree is gone
        int code = serve.awaitExit(UP);
        assertThat(code).as("the owning serve ends normally\n%s%s", serve.out(), serve.err()).isEqualTo(ExitCode.OK);
        assertThat(serve.out()).contains("Server " + lease.id() + " was stopped from outside");
        assertThat(serve.err()).isEmpty();
    }

    @Test
    void stopByPortReachesAnInProcessOwnerWhichNotices() throws Exception {
        int port = Fixture.freePort();
        try (ServerManager owner = new ServerManager(new TetherHome(home()), ServerEvents.NONE)) {
            ServerHandle server = owner.start(spec("m", port));
            Lease lease = server.lease();

            var stopped = TetherCli.run(home(), "stop", "--port", String.valueOf(port));

            assertThat(stopped.exitCode()).as(stopped.err()).isZero();
            assertThat(stopped.out()).contains("Stopped " + lease.id());
            assertServerGone(home(), lease);
            assertThat(server.onExit().get(UP.toSeconds(), TimeUnit.SECONDS)).as("no exit code: it did not crash").isNull();
            assertThat(server.exitCode()).isEmpty();
            assertThat(server.isAlive()).isFalse();
            assertThat(server.externalStopSummary()).as("the owner learns it was stopped from outside").isPresent();
        }
    }

    @Test
    void stopAllStopsEveryServer() throws Exception {
        try (ServerManager owner = new ServerManager(new TetherHome(home()), ServerEvents.NONE)) {
            Lease a = owner.start(spec("a", ServerSpec.AUTO_PORT)).lease();
            Lease b = owner.start(spec("b", ServerSpec.AUTO_PORT)).lease();

            var stopped = TetherCli.run(home(), "stop", "--all");

            assertThat(stopped.exitCode()).as(stopped.err()).isZero();
            assertThat(stopped.out()).contains("Stopped " + a.id()).contains("Stopped " + b.id());
            assertServerGone(home(), a);
            assertServerGone(home(), b);
            assertThat(owner.leases()).isEmpty();
        }
    }

    @Test
    void nothingToStopOnAFreePortExitsLikeAnUnknownId() throws Exception {
        int port = Fixture.freePort();
        var result = TetherCli.run(home(), "stop", "--port", String.valueOf(port));
        var unknown = TetherCli.run(home(), "stop", "t-no-such-id");
        assertThat(result.exitCode()).isEqualTo(ExitCode.USAGE).isEqualTo(unknown.exitCode());
        assertThat(result.errLines()).singleElement().asString()
                .startsWith("tether: no tether-managed server on port " + port);
        assertThat(result.out()).isEmpty();
    }

    @Test
    void anUnknownIdOrNoSelectorIsAUsageError() throws Exception {
        var unknown = TetherCli.run(home(), "stop", "t-no-such-id");
        assertThat(unknown.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(unknown.errLines()).hasSize(1);
        assertThat(unknown.err()).contains("no managed server with id t-no-such-id");

        var none = TetherCli.run(home(), "stop");
        assertThat(none.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(none.errLines()).hasSize(1);
        assertThat(none.err()).contains("--port P, or --all");
    }
}
