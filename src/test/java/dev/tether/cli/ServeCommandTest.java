package dev.tether.cli;

import static dev.tether.cli.TetherHomes.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.fixtures.ExitsAtOnce;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.HealthServer;
import dev.tether.fixtures.Worker;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.TreeStopper;
import dev.tether.server.Lease;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tether serve} run as a user runs it: a separate JVM, its own TETHER_HOME, real fixture servers,
 * real signals (SIGTERM, SIGINT, SIGKILL) — and in every case, the server tree is gone afterwards.
 */
class ServeCommandTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    Path home() {
        return tethers.home();
    }


    private BackgroundTether serve(String... args) throws IOException {
        return serveIn(null, args);
    }

    private BackgroundTether serveIn(Path workDir, String... args) throws IOException {
        List<String> all = new ArrayList<>(List.of("serve"));
        all.addAll(List.of(args));
        BackgroundTether t = tethers.start(workDir, all.toArray(String[]::new));
        return t;
    }

    // ---- the tests ----

    @Test
    void sigtermStopsTheTreeThenExits143() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether tether = serve("--command", healthServer(), "--port", String.valueOf(port));
        Lease lease = tether.awaitReady();
        String ready = tether.awaitLine("Ready: ", UP);
        assertThat(ready).startsWith("Ready: http://127.0.0.1:" + port);
        assertThat(tether.out().lines().filter(l -> l.startsWith("Starting server"))).hasSize(1);
        assertThat(tether.out().indexOf("Starting server")).isLessThan(tether.out().indexOf("Ready:"));
        assertThat(status("http://127.0.0.1:" + port + "/health")).isEqualTo(200);
        assertThat(lease.owner().pid()).isEqualTo(tether.process.pid());
        assertThat(lease.server().isAlive()).isTrue();

        // SIGTERM by identity (Process.destroy() would also close our ends of its output pipes).
        assertThat(Signaller.send(tether.identity(), Signal.TERM)).isEqualTo(Signaller.Outcome.SENT);

        assertThat(tether.awaitExit(UP)).isEqualTo(ExitCode.TERMINATED);
        // The exit came only after the tree was gone: check at once, no waiting.
        assertServerGone(home(), lease);
        assertThat(tether.err()).contains("SIGTERM");
        assertThat(tether.out()).contains("Server " + lease.id() + " stopped");
        assertThat(Files.readString(Path.of(lease.logPath()))).contains("stop requested by its tether");
        assertThat(tether.err()).doesNotContain("Exception");
    }

    @Test
    void sigintStopsTheTreeThenExits130AndAProfileComesFromTetherYaml() throws Exception {
        int port = Fixture.freePort();
        Path work = Files.createDirectories(dir.resolve("work"));
        StringBuilder words = new StringBuilder();
        for (String word : Fixture.command(HealthServer.class, "--port", "{port}")) {
            words.append(words.isEmpty() ? "" : ", ").append('"').append(word).append('"');
        }
        Files.writeString(work.resolve("tether.yaml"), "profiles:\n  fixture:\n    command: [" + words + "]\n    health: /health\n");
        BackgroundTether tether = serveIn(work, "--profile", "fixture", "--model", "m", "--port", String.valueOf(port));
        Lease lease = tether.awaitReady();
        assertThat(lease.profile()).isEqualTo("fixture");
        assertThat(lease.model()).isEqualTo("m");

        assertThat(Signaller.send(tether.identity(), Signal.INT)).isEqualTo(Signaller.Outcome.SENT);

        assertThat(tether.awaitExit(UP)).isEqualTo(ExitCode.INTERRUPTED);
        assertServerGone(home(), lease);
        assertThat(tether.err()).contains("SIGINT");
    }

    @Test
    void killMinus9OfTetherMakesTheWatchdogStopTheTree() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether tether = serve("--command", healthServer(), "--port", String.valueOf(port));
        Lease lease = tether.awaitReady();
        ProcessTree tree = new ProcessTree(lease.membership());
        assertThat(tree.members()).isNotEmpty();

        tether.process.destroyForcibly();   // SIGKILL: no shutdown hook runs
        assertThat(tether.process.waitFor(10, TimeUnit.SECONDS)).isTrue();

        Path leaseFile = home().resolve("leases").resolve(lease.id() + ".json");
        assertThat(Poll.until(() -> tree.members().isEmpty() && !Files.exists(leaseFile) && !lease.shim().isAlive(),
                WATCHDOG, Duration.ofMillis(20)))
                .as("tree %s, lease file %s, shim %s", tree.members(), Files.exists(leaseFile), lease.shim().isAlive()).isTrue();
        assertServerGone(home(), lease);
        assertThat(Files.readString(Path.of(lease.logPath()))).contains("its tether is gone");
    }

    @Test
    void anOrphanLeftByADeadTetherAndShimIsReapedByTheNextServe() throws Exception {
        int port = Fixture.freePort();
        Lease orphan = serve("--command", healthServer(), "--port", String.valueOf(port)).orphanItsServer();
        assertThat(status("http://127.0.0.1:" + port + "/health")).as("the orphan still serves").isEqualTo(200);

        BackgroundTether next = serve("--command", healthServer(), "--port", String.valueOf(port));
        Lease fresh = next.awaitReady();
        String reaped = next.awaitLine("Reaped orphan", UP);
        assertThat(reaped).contains(orphan.id()).contains("port " + port);
        assertThat(next.out().indexOf("Reaped orphan")).isLessThan(next.out().indexOf("Starting server"));
        assertThat(next.out()).doesNotContain("already running");
        assertThat(fresh.id()).isNotEqualTo(orphan.id());
        assertThat(new ProcessTree(orphan.membership()).members()).as("the orphan's tree").isEmpty();
        assertThat(orphan.server().isAlive()).isFalse();
        assertThat(PortListeners.holderPids(port)).containsExactly(fresh.server().pid());

        assertThat(Signaller.send(next.identity(), Signal.TERM)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(next.awaitExit(UP)).isEqualTo(ExitCode.TERMINATED);
        assertServerGone(home(), fresh);
    }

    @Test
    void sigtermWhileTheServerIsStillLoadingStopsItToo() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether tether = serve("--command", healthServer("--ready-after-ms", "600000"), "--port", String.valueOf(port));
        tether.awaitLine("Starting server", UP);
        Fixture.awaitListening(port, UP);   // up, answering 503, not ready
        Lease lease = leases(home()).getFirst();
        assertThat(lease.state()).isEqualTo(Lease.State.STARTING);
        assertThat(status("http://127.0.0.1:" + port + "/health")).isEqualTo(503);

        assertThat(Signaller.send(tether.identity(), Signal.TERM)).isEqualTo(Signaller.Outcome.SENT);

        assertThat(tether.awaitExit(UP)).isEqualTo(ExitCode.TERMINATED);
        assertServerGone(home(), lease);
        assertThat(tether.out()).doesNotContain("Ready:");
    }

    @Test
    void whenTheShimIsKilledTheServeStopsTheTreeItselfAndFails() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether tether = serve("--command", healthServer(), "--port", String.valueOf(port));
        Lease lease = tether.awaitReady();

        assertThat(Signaller.send(lease.shim(), Signal.KILL)).isEqualTo(Signaller.Outcome.SENT);

        assertThat(tether.awaitExit(UP)).isEqualTo(ExitCode.JOB_FAILED);
        assertThat(tether.out()).contains("Server " + lease.id() + " exited (its shim is gone)");
        assertServerGone(home(), lease);
    }

    @Test
    void twoServesRacingForOnePortStartExactlyOneServer() throws Exception {
        int port = Fixture.freePort();
        // Loads for a while, so whichever comes second finds the first one still starting.
        String command = healthServer("--ready-after-ms", "1000");
        BackgroundTether one = serve("--command", command, "--port", String.valueOf(port));
        BackgroundTether two = serve("--command", command, "--port", String.valueOf(port));
        assertThat(Poll.until(() -> !one.process.isAlive() || !two.process.isAlive(), UP, Duration.ofMillis(20)))
                .as("the one that does not own the server ends").isTrue();
        BackgroundTether user = one.process.isAlive() ? two : one;
        BackgroundTether owner = user == one ? two : one;
        assertThat(user.awaitExit(UP)).as(user.out() + user.err()).isEqualTo(ExitCode.OK);
        Lease lease = owner.awaitReady();

        assertThat(user.out()).contains("Using running server http://127.0.0.1:" + port)
                .contains("tether pid " + owner.process.pid()).doesNotContain("Starting server");
        assertThat(owner.out().lines().filter(l -> l.startsWith("Starting server"))).hasSize(1);
        assertThat(leases(home())).hasSize(1);
        assertThat(PortListeners.holderPids(port)).containsExactly(lease.server().pid());
        assertThat(processesOf(home()).stream().map(p -> ProcFs.commandLine(p.pid()))
                .filter(c -> c.contains(HealthServer.class.getName()) && !c.contains(TetherCommand.class.getName())))
                .as("HealthServer processes").hasSize(1);

        assertThat(Signaller.send(owner.identity(), Signal.TERM)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(owner.awaitExit(UP)).isEqualTo(ExitCode.TERMINATED);
        assertServerGone(home(), lease);
    }

    @Test
    void aServerOfAnotherLiveTetherIsUsedNotStarted() throws Exception {
        int port = Fixture.freePort();
        try (ServerManager owner = new ServerManager(new TetherHome(home()), ServerEvents.NONE);
             ServerHandle server = owner.start(new ServerSpec(null, Profiles.command(healthServer(), "/health"),
                     "127.0.0.1", port, null))) {
            BackgroundTether second = serve("--command", healthServer(), "--port", String.valueOf(port));
            assertThat(second.awaitExit(UP)).as(second.err()).isEqualTo(ExitCode.OK);
            assertThat(second.out()).contains("Using running server http://127.0.0.1:" + port)
                    .contains("tether pid " + ProcessHandle.current().pid())
                    .doesNotContain("Starting server");
            assertThat(server.isAlive()).as("never stopped by its user").isTrue();
            assertThat(status(server.baseUrl() + "/health")).isEqualTo(200);
        }
    }

    @Test
    void aForeignListenerIsRefusedWithExit4AndLeftAlone() throws Exception {
        int port = Fixture.freePort();
        Spawned foreign = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", String.valueOf(port)),
                dir.resolve("foreign.log"), null));
        try {
            Fixture.awaitListening(port, UP);
            var result = TetherCli.run(home(), "serve", "--command", healthServer(), "--port", String.valueOf(port));
            assertThat(result.exitCode()).as(result.err()).isEqualTo(ExitCode.PORT_HELD);
            assertThat(result.errLines()).hasSize(1);
            assertThat(result.err()).startsWith("tether: port " + port).contains("pid " + foreign.pid())
                    .contains("--port auto").doesNotContain("Exception");
            assertThat(result.out()).doesNotContain("Starting server");
            assertThat(foreign.process().isAlive()).isTrue();
            assertThat(PortListeners.holderPids(port)).containsExactly(foreign.pid());
            assertThat(noFilesIn(home().resolve("leases"))).isTrue();
        } finally {
            TreeStopper.stop(new ProcessTree(foreign.membership()), Duration.ofSeconds(5));
        }
    }

    @Test
    void aServerThatFailsToStartExits3WithTheEndOfItsLog() throws Exception {
        var result = TetherCli.run(home(), "serve", "--command",
                String.join(" ", Fixture.command(ExitsAtOnce.class, "--code", "7", "--message", "CUDA_out_of_memory")),
                "--port", String.valueOf(Fixture.freePort()));
        assertThat(result.exitCode()).as(result.err()).isEqualTo(ExitCode.SERVER_FAILED);
        assertThat(result.errLines().getFirst()).startsWith("tether: the server failed to start").contains("code 7");
        assertThat(result.err()).contains("CUDA_out_of_memory").doesNotContain("Exception");
        assertThat(noFilesIn(home().resolve("leases"))).isTrue();
    }

    @Test
    void aBrokenTetherYamlInTheWorkingDirectoryIsExit2() throws Exception {
        Path work = Files.createDirectories(dir.resolve("work"));
        Files.writeString(work.resolve("tether.yaml"), "profiles:\n  broken: [unclosed\n");
        BackgroundTether tether = serveIn(work, "--model", "m", "--profile", "broken", "--port", String.valueOf(Fixture.freePort()));
        assertThat(tether.awaitExit(UP)).isEqualTo(ExitCode.USAGE);
        assertThat(tether.err().lines().filter(l -> !l.isBlank())).hasSize(1);
        assertThat(tether.err()).startsWith("tether: ").contains("tether.yaml").contains("not valid YAML");
        assertThat(noFilesIn(home().resolve("leases"))).isTrue();
    }
}
