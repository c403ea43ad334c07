package dev.tether.cli;

import static dev.tether.cli.TetherHomes.assertServerGone;
import static dev.tether.cli.TetherHomes.healthServer;
import static org.assertj.core.api.Assertions.assertThat;


import dev.tether.fixtures.Fixture;
import dev.tether.proc.ProcessTree;
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

/** {@code tether reap}: servers whose tether and shim are both dead are stopped; live ones are not touched. */
class ReapCommandTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private BackgroundTether serve;

    private Path home() {
        return dir.resolve("home");
    }

    @Test
    void withNothingToReapItSaysSo() throws Exception {
        var result = TetherCli.run(home(), "reap");
        assertThat(result.exitCode()).isZero();
        assertThat(result.out().strip()).isEqualTo("No orphans.");
    }

    @Test
    void anOrphanIsReapedAndALiveServerIsLeftAlone() throws Exception {
        int port = Fixture.freePort();
        // The live server first: any start reaps every orphan, so the orphan is made after it.
        try (ServerManager owner = new ServerManager(new TetherHome(home()), ServerEvents.NONE);
             ServerHandle live = owner.start(new ServerSpec("live", Profiles.command(healthServer(), "/health"),
                     "127.0.0.1", ServerSpec.AUTO_PORT, Duration.ofSeconds(5)))) {
            serve = tethers.start(null, "serve", "--command", healthServer(), "--port", String.valueOf(port));
            Lease orphan = serve.orphanItsServer();
            var ps = TetherCli.run(home(), "ps");
            assertThat(ps.out().lines().filter(l -> l.startsWith(orphan.id()))).singleElement()
                    .satisfies(l -> assertThat(l).contains("orphan").contains("(gone)"));
            assertThat(ps.out().lines().filter(l -> l.startsWith(live.lease().id()))).singleElement()
                    .satisfies(l -> assertThat(l).contains("ready"));

            var reaped = TetherCli.run(home(), "reap");

            assertThat(reaped.exitCode()).as(reaped.err()).isZero();
            assertThat(reaped.out()).startsWith("Reaped orphan " + orphan.id()).contains("port " + port)
                    .doesNotContain(live.lease().id());
            assertServerGone(home(), orphan);
            assertThat(orphan.server().isAlive()).isFalse();
            assertThat(new ProcessTree(orphan.membership()).members()).isEmpty();
            assertThat(live.isAlive()).isTrue();
            assertThat(owner.leases()).extracting(Lease::id).containsExactly(live.lease().id());
        }
    }
}
