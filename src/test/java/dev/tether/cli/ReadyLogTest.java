package dev.tether.cli;

import static dev.tether.cli.TetherHomes.healthServer;
import static dev.tether.cli.TetherHomes.leases;
import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * Readiness by a log line ({@code --ready-log REGEX}, a profile's {@code ready-log}): a server whose health answers at
 * once but which says later that it has loaded is Ready only after it said so; one that never says it fails to start.
 */
class ReadyLogTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    @Test
    void readyWaitsForTheLogLineAsWellAsTheHealthCheck() throws Exception {
        var serve = tethers.start(dir, "serve", "--command", healthServer("--say-after-ms", "1500", "--say", "model-loaded-in-1.5s"),
                "--port", "auto", "--ready-log", "model-loaded", "--grace", "1s");
        String ready = serve.awaitLine("Ready: ", TetherHomes.UP);
        Lease lease = serve.awaitReady();
        // Ready was printed after the line reached the log: at that moment the log already holds it.
        assertThat(Files.readString(Path.of(lease.logPath()))).as("the log when %s", ready).contains("model-loaded-in-1.5s");
        assertThat(Signaller.send(serve.identity(), Signal.TERM)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(serve.awaitExit(TetherHomes.UP)).isEqualTo(ExitCode.TERMINATED);
        TetherHomes.assertServerGone(tethers.home(), lease);
    }

    @Test
    void aServerThatNeverSaysItIsReadyFailsToStartNamingTheLine() throws Exception {
        var result = TetherCli.run(tethers.home(), "serve", "--command", healthServer(), "--port", "auto",
                "--ready-log", "never printed", "--startup-timeout", "3s", "--grace", "1s");
        assertThat(result.exitCode()).as(result.err()).isEqualTo(ExitCode.SERVER_FAILED);
        assertThat(result.err()).contains("a log line matching /never printed/");
        assertThat(leases(tethers.home())).isEmpty();
    }

    @Test
    void aBadExpressionIsOneLineAndExit2() throws Exception {
        var result = TetherCli.run(tethers.home(), "serve", "--command", healthServer(), "--ready-log", "model (loaded");
        assertThat(result.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(result.errLines()).singleElement().satisfies(l -> assertThat(l).contains("--ready-log").contains("not a regular expression"));
    }
}
