package dev.tether.cli;

import static dev.tether.cli.TetherHomes.leases;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FlakyOpenAiServer;
import dev.tether.proc.Poll;
import dev.tether.server.Lease;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * How a run's server can end mid-run, and what the run does and says about it (issue 10, items 5-7):
 * a hung server, a merely slow one, real processes and real signals throughout.
 */
class RunServerEndsTest {
    private static final Duration RUN = Duration.ofMinutes(3);

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path input(int n) throws IOException {
        return TetherHomes.promptsFile(dir, n);
    }

    /** A prompts run against FlakyOpenAiServer with the fixture options given. */
    private String[] prompts(Path input, Path output, List<String> fixtureArgs, String... more) {
        List<String> fixture = new ArrayList<>(List.of("--port", "{port}"));
        fixture.addAll(fixtureArgs);
        List<String> args = new ArrayList<>(List.of("run", "--task", "prompts", "--model", "m", "--command",
                String.join(" ", Fixture.command(FlakyOpenAiServer.class, fixture.toArray(String[]::new))),
                "--input", input.toString(), "--output", output.toString(), "--grace", "1s"));
        args.addAll(List.of(more));
        return args.toArray(String[]::new);
    }

    private static long count(Path file) {
        return TetherHomes.lineCount(file);
    }

    private static void assertAllAnswered(Path output, int n) throws IOException {
        List<JsonNode> records = TetherHomes.jsonLines(output);
        assertThat(records).hasSize(n).allSatisfy(r -> {
            assertThat(r.has("error")).as("failure record %s", r).isFalse();
            assertThat(r.get("generation").asText()).isEqualTo(FlakyOpenAiServer.TEXT);
        });
    }

    /** A run that gets going: some records are written, and its server's lease is returned. */
    private Lease awaitProgress(BackgroundTether run, Path output, int records) {
        assertThat(Poll.until(() -> count(output) >= records || !run.process.isAlive(), RUN, Duration.ofMillis(10)))
                .isTrue();
        assertThat(run.process.isAlive()).as("still running\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isTrue();
        List<Lease> leases = leases(tethers.home());
        assertThat(leases).hasSize(1);
        return leases.getFirst();
    }

    @Test
    void aHungServerIsRestartedAndTheRunFinishes() throws Exception {
        int n = 60;
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(n), output, List.of("--delay-ms", "300"),
                "--port", "auto", "--concurrency", "2", "--hang-timeout", "3s"));
        Lease lease = awaitProgress(run, output, 4);
        TetherHomes.freeze(lease.server());   // alive, listening, answering nothing: hung

        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isZero();
        assertThat(run.err().lines().toList()).filteredOn(l -> l.contains("is hung")).singleElement().satisfies(l -> assertThat(l)
                .contains("the server for m is hung").contains("health check did not answer")
                .contains("restarting it (1 of 3 restarts)"));
        assertThat(run.err()).doesNotContain("is gone");
        assertThat(run.out()).contains("Done.");
        assertAllAnswered(output, n);
    }

    @Test
    void aSlowServerWhoseHealthAnswersIsNotRestarted() throws Exception {
        int n = 4;
        Path output = dir.resolve("gens.jsonl");
        // Every answer takes 4 s, four times the hang timeout; /health answers at once.
        var run = tethers.start(dir, prompts(input(n), output, List.of("--delay-ms", "4000"),
                "--port", "auto", "--concurrency", "4", "--hang-timeout", "1s"));
        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isZero();
        assertThat(run.err()).doesNotContain("hung").doesNotContain("restarting");
        assertThat(run.out()).containsOnlyOnce("Starting server");
        assertAllAnswered(output, n);
    }

    @Test
    void aServerStoppedByTetherStopIsNotRestartedAndTheRunEndsSayingWhoStoppedIt() throws Exception {
        int n = 200;
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(n), output, List.of("--delay-ms", "100"),
                "--port", "auto", "--concurrency", "2"));
        Lease lease = awaitProgress(run, output, 4);

        var stop = TetherCli.run(tethers.home(), "stop", lease.id());
        assertThat(stop.exitCode()).as(stop.err()).isZero();

        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isEqualTo(1);
        assertThat(run.err()).doesNotContain("restarting").doesNotContain("records failed");
        assertThat(run.err().lines().filter(l -> l.startsWith("tether: ")).toList()).singleElement().satisfies(l ->
                assertThat(l).contains("the server for m (" + lease.id() + ") was stopped from outside by `tether stop`")
                        .contains("not restarted").contains("re-run the same command"));
        assertThat(run.out()).doesNotContain("Done.").containsOnlyOnce("Starting server");
        List<JsonNode> records = TetherHomes.jsonLines(output);
        assertThat(records).as("no failure records for the work left").hasSizeLessThan(n)
                .allSatisfy(r -> assertThat(r.has("error")).as("failure record %s", r).isFalse());
        assertThat(leases(tethers.home())).isEmpty();
    }

    @Test
    void aRunUsingAnotherTethersServerTakesOverWhenThatServerIsStopped() throws Exception {
        int port = Fixture.freePort();
        String command = String.join(" ", Fixture.command(FlakyOpenAiServer.class, "--port", "{port}", "--delay-ms", "100"));
        var owner = tethers.start(dir, "serve", "--model", "m", "--command", command, "--port", String.valueOf(port));
        Lease shared = owner.awaitReady();

        int n = 120;
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, "run", "--task", "prompts", "--model", "m", "--command", command, "--input",
                input(n).toString(), "--output", output.toString(), "--port", String.valueOf(port), "--concurrency", "2");
        run.awaitLine("Using running server", TetherHomes.UP);
        assertThat(Poll.until(() -> count(output) >= 4 || !run.process.isAlive(), RUN, Duration.ofMillis(10))).isTrue();

        // The owner stops its server (here: it is stopped under its serve, which then ends).
        var stop = TetherCli.run(tethers.home(), "stop", shared.id());
        assertThat(stop.exitCode()).as(stop.err()).isZero();
        assertThat(owner.awaitExit(RUN)).isZero();

        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isZero();
        assertThat(run.err().lines().filter(l -> l.contains("was stopped by its owner")).toList()).singleElement()
                .satisfies(l -> assertThat(l).contains("the server for m that this run shared with tether pid "
                        + owner.process.pid()).contains("starting this run's own server"));
        assertThat(run.out()).contains("Starting server").contains("Done.");
        assertAllAnswered(output, n);
    }

    /** Sends a signal with the real kill(1) (SIGHUP and SIGQUIT are not among the signals tether sends). */
    private static void kill(String signal, long pid) throws Exception {
        Process kill = new ProcessBuilder("/bin/kill", "-" + signal, String.valueOf(pid)).inheritIO().start();
        assertThat(kill.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        assertThat(kill.exitValue()).isZero();
    }

    /** A run stopped by a signal mid-run: only the signal's line, no restarts, no failure records. */
    private void assertStoppedBySignal(BackgroundTether run, Path output, String signal, int code) throws Exception {
        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isEqualTo(code);
        assertThat(run.err().lines().filter(l -> l.startsWith("tether: ")).toList()).as(run.err()).singleElement()
                .satisfies(l -> assertThat(l).startsWith("tether: SIG" + signal + " received")
                        .endsWith("stopping servers, then exiting with " + code));
        assertThat(run.err()).doesNotContain("restarting").doesNotContain("is gone").doesNotContain("unexpected failure")
                .doesNotContain("from outside");
        assertThat(TetherHomes.jsonLines(output)).allSatisfy(r -> assertThat(r.has("error")).as("failure record %s", r).isFalse());
        assertThat(leases(tethers.home())).isEmpty();
    }

    @Test
    void ctrlCMidRunStopsWithoutRestartLinesOrFailureRecords() throws Exception {
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(200), output, List.of("--delay-ms", "100"),
                "--port", "auto", "--concurrency", "2"));
        awaitProgress(run, output, 4);
        // Sent to the process itself: a test's child is not in a terminal's foreground group.
        kill("INT", run.process.pid());
        assertStoppedBySignal(run, output, "INT", 130);
    }

    @Test
    void sighupMidRunExits129WithItsOwnLine() throws Exception {
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(200), output, List.of("--delay-ms", "100"),
                "--port", "auto", "--concurrency", "2"));
        awaitProgress(run, output, 4);
        kill("HUP", run.process.pid());
        assertStoppedBySignal(run, output, "HUP", 129);
        assertThat(run.err()).contains("hangup");
    }

    @Test
    void sigquitPrintsItsThreadDumpOnStderrNeverOnStdout() throws Exception {
        int n = 30;
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(n), output, List.of("--delay-ms", "100"),
                "--port", "auto", "--concurrency", "2"));
        awaitProgress(run, output, 2);
        kill("QUIT", run.process.pid());
        assertThat(run.awaitExit(RUN)).as("SIGQUIT does not stop the run\nstderr:\n%s", run.err()).isZero();
        assertThat(run.out()).doesNotContain("Full thread dump").doesNotContain("\"main\"").contains("Done.");
        assertThat(run.err()).contains("Full thread dump");
        assertAllAnswered(output, n);
    }
}
