package dev.tether.cli;

import static dev.tether.cli.TetherHomes.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.HealthServer;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.TreeStopper;
import dev.tether.server.Lease;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 10, item 1: "Ready" means <em>our</em> server answers. A listener that this TETHER_HOME does not
 * manage — another home's server, a server whose lease file is damaged, a process that took the port
 * after tether claimed it — is foreign (exit 4), never taken as ready, and left alone.
 */
class ReadyMeansOursTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers homeA = new Tethers(() -> dir.resolve("home-a"));

    @RegisterExtension
    final Tethers homeB = new Tethers(() -> dir.resolve("home-b"));

    private BackgroundTether serveInA(int port) throws Exception {
        BackgroundTether a = homeA.start(null, "serve", "--command", healthServer(), "--health", "/health",
                "--port", String.valueOf(port));
        a.awaitReady();
        return a;
    }

    @Test
    void anotherHomesServerOnThePortIsForeign() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether a = serveInA(port);
        Lease leaseA = a.awaitReady();

        var b = TetherCli.run(homeB.home(), "serve", "--command", healthServer(), "--health", "/health",
                "--port", String.valueOf(port));

        assertThat(b.exitCode()).as(b.out() + b.err()).isEqualTo(ExitCode.PORT_HELD);
        assertThat(b.out()).doesNotContain("Ready:");
        assertThat(b.err()).contains("port " + port).contains(leaseA.id()).contains("another home");
        assertThat(leaseA.server().isAlive()).as("home A's server is left alone").isTrue();
        assertThat(a.process.isAlive()).isTrue();
    }

    @Test
    void aListenerWhoseLeaseFileIsDamagedIsForeign() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether a = serveInA(port);
        Lease lease = a.awaitReady();
        Path file = homeA.home().resolve("leases").resolve(lease.id() + ".json");
        byte[] original = Files.readAllBytes(file);
        try {
            Files.write(file, java.util.Arrays.copyOf(original, original.length / 2));   // truncated

            var again = TetherCli.run(homeA.home(), "serve", "--command", healthServer(), "--health", "/health",
                    "--port", String.valueOf(port));

            assertThat(again.exitCode()).as(again.out() + again.err()).isEqualTo(ExitCode.PORT_HELD);
            assertThat(again.out()).doesNotContain("Ready:");
            assertThat(again.err()).contains(lease.id()).contains("damaged");
            assertThat(lease.server().isAlive()).isTrue();
        } finally {
            Files.write(file, original);   // so that A's own end finds its lease
        }
    }

    @Test
    void aListenerThatTakesThePortAfterTheClaimIsNotTakenAsReady() throws Exception {
        int port = Fixture.freePort();
        Path go = dir.resolve("go");
        // "Our server" says when it runs and never binds: whoever answers on the port is someone else.
        BackgroundTether b = homeB.start(null, "serve", "--command", "sh -c 'touch " + go + "; exec sleep 600'",
                "--health", "/health", "--port", String.valueOf(port), "--startup-timeout", "120s");
        assertThat(Poll.until(() -> Files.exists(go), UP)).as("our server started").isTrue();
        Spawned foreign = Spawner.spawn(Spawner.Spec.of(Fixture.command(HealthServer.class, "--port", String.valueOf(port)),
                dir.resolve("foreign.log"), null));
        try {
            int exit = b.awaitExit(UP);

            assertThat(exit).as(b.out() + b.err()).isEqualTo(ExitCode.PORT_HELD);
            assertThat(b.out()).doesNotContain("Ready:");
            assertThat(b.err()).contains("pid " + foreign.pid()).contains("not started by tether");
            assertThat(foreign.process().isAlive()).isTrue();
            assertThat(PortListeners.holderPids(port)).containsExactly(foreign.pid());
        } finally {
            TreeStopper.stop(new ProcessTree(foreign.membership()), Duration.ofSeconds(5));
        }
    }
}
