package dev.tether.cli;

import static dev.tether.cli.TetherHomes.leases;
import static dev.tether.cli.TetherHomes.processesOf;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.fixtures.Fixture;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tether run} end to end on the embedded engine and the tiny model, as a user runs it: a separate
 * JVM, real servers, real kills. The tiny model's text is meaningless, so assertions are on files,
 * counts, exit codes and processes.
 */
class RunCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration RUN = Duration.ofMinutes(3);

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path home() {
        return dir.resolve("home");
    }

    private Path out() {
        return dir.resolve("out");
    }

    private BackgroundTether start(String... args) throws IOException {
        BackgroundTether t = tethers.start(dir, args);
        return t;
    }

    private BackgroundTether finish(int expectedExit, String... args) throws Exception {
        BackgroundTether t = start(args);
        assertThat(t.awaitExit(RUN)).as("exit code\nstdout:\n%s\nstderr:\n%s", t.out(), t.err()).isEqualTo(expectedExit);
        return t;
    }

    private String[] wiki(String... args) {
        List<String> all = new ArrayList<>(List.of("run", "--task", "precisewikiqa", "--model", "tiny", "--output-dir",
                out().toString()));
        all.addAll(List.of(args));
        return all.toArray(String[]::new);
    }

    @Test
    void allStepsRunAndWriteTheOriginalFiles() throws Exception {
        // The tiny judge's random weights never write a readable verdict: the pipeline runs, the metrics are n/a, exit 1.
        var run = finish(1, wiki("--step", "all", "--N", "6", "--port", "auto", "--concurrency", "8"));
        assertThat(run.out()).contains("Starting server").contains("Ready: ").contains("meaningless")
                .contains("eval: halu_rate n/a, refusal_rate n/a, correct_rate n/a (6 samples").contains("eval: WARNING");
        assertThat(run.err()).contains("tether: eval: none of the 6 verdicts of the judge tiny could be read");
        Path questions = out().resolve("precise_qa/qa_goodwiki_tiny_dynamic.jsonl");
        assertThat(TetherHomes.jsonLines(questions)).hasSize(6).allSatisfy(q -> {
            assertThat(q.get("prompt").isTextual()).isTrue();
            assertThat(q.get("answer").isTextual()).isTrue();
            assertThat(q.get("reference").isTextual()).isTrue();
            assertThat(q.get("h_score_cat").asInt()).isIn(8, 9);
        });
        assertThat(TetherHomes.jsonLines(questions).stream().filter(q -> q.get("h_score_cat").asInt() == 8)).hasSize(3);
        List<JsonNode> generations = TetherHomes.jsonLines(out().resolve("precisewikiqa/tiny/generation.jsonl"));
        assertThat(generations).hasSize(6).allSatisfy(g -> assertThat(g.get("generation").isTextual()).isTrue());
        JsonNode results = JSON.readTree(out().resolve("precisewikiqa/tiny/eval_results.json").toFile());
        for (String metric : List.of("halu_rate", "refusal_rate", "correct_rate")) {
            assertThat(results.get(metric).isNull()).as(metric).isTrue();
        }
        assertThat(results.get("counts").get("samples").asInt()).isEqualTo(6);
        assertThat(results.get("samples")).hasSize(6);
        assertThat(results.get("evaluator_abstention").asText()).isEqualTo("tiny");
        assertThat(leases(home())).isEmpty();
    }

    /** The seed note's own check, with tether in place of the Python runner. */
    @Test
    void theSeedsTwoRunCheck() throws Exception {
        int port = Fixture.freePort();
        var first = finish(0, wiki("--step", "generate", "--N", "10", "--port", String.valueOf(port)));
        assertThat(first.out()).contains("Starting server");
        assertThat(PortListeners.isListening(port)).as("nothing listens on the port after the run").isFalse();
        assertThat(processesOf(home())).as("no process of that run is alive").isEmpty();

        // A larger N, so that the second run has work and starts its server (a complete one starts none).
        var second = finish(0, wiki("--step", "generate", "--N", "12", "--port", String.valueOf(port)));
        assertThat(second.out()).contains("Starting server").doesNotContain("already running");
        assertThat(PortListeners.isListening(port)).isFalse();
    }

    @Test
    void aLargerNAddsOnlyTheMissingQuestions() throws Exception {
        finish(0, wiki("--step", "generate", "--N", "4", "--port", "auto"));
        List<JsonNode> before = TetherHomes.jsonLines(out().resolve("precise_qa/qa_goodwiki_tiny_dynamic.jsonl"));
        finish(0, wiki("--step", "generate", "--N", "8", "--port", "auto"));
        List<JsonNode> after = TetherHomes.jsonLines(out().resolve("precise_qa/qa_goodwiki_tiny_dynamic.jsonl"));
        assertThat(after).hasSize(8);
        assertThat(after.subList(0, 4)).isEqualTo(before);
    }

    /** A questions file as generate writes it, without spending minutes generating one. */
    private void writeQuestions(int n) throws IOException {
        Path file = out().resolve("precise_qa/qa_goodwiki_tiny_dynamic.jsonl");
        Files.createDirectories(file.getParent());
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < n; i++) {
            lines.append(JSON.writeValueAsString(java.util.Map.of("title", "Topic " + i, "h_score_cat", 8 + i % 2,
                    "reference", "Reference text " + i, "prompt", "What is item " + i + "?", "answer", "item " + i,
                    "candidate", i))).append('\n');
        }
        Files.writeString(file, lines);
    }

    /** Every file under the state dir's leases/ and logs/: what a server start leaves behind. */
    private List<String> serverFiles() throws IOException {
        List<String> files = new ArrayList<>();
        for (String sub : List.of("leases", "logs")) {
            Path d = home().resolve(sub);
            if (Files.isDirectory(d)) {
                try (var list = Files.list(d)) {
                    list.forEach(f -> files.add(sub + "/" + f.getFileName()));
                }
            }
        }
        files.sort(null);
        return files;
    }

    @Test
    void aResumedRunWithNothingLeftStartsNoServer() throws Exception {
        writeQuestions(4);   // generate has nothing to do from the start: half of the questions in each bucket
        String[] all = wiki("--step", "all", "--N", "4", "--port", "auto");
        var first = finish(1, all);   // exit 1: the tiny judge's verdicts cannot be read (RunResultsTest)
        assertThat(first.out())
                .contains("generate: all 4 questions already in " + out().resolve("precise_qa/qa_goodwiki_tiny_dynamic.jsonl")
                        + "; nothing to do (no server started)")
                .contains("Starting server").contains("inference: 4 records");
        assertThat(first.out().indexOf("nothing to do")).as("the skip comes before the server start for inference")
                .isLessThan(first.out().indexOf("Starting server"));
        Path results = out().resolve("precisewikiqa/tiny/eval_results.json");
        JsonNode before = JSON.readTree(results.toFile());
        List<String> filesBefore = serverFiles();
        assertThat(filesBefore).as("the first run logged its server").isNotEmpty();

        var again = finish(1, all);
        assertThat(again.out())
                .contains("inference: all 4 records already in " + out().resolve("precisewikiqa/tiny/generation.jsonl")
                        + "; nothing to do (no server started)")
                .contains("eval: all 4 samples already judged in " + out().resolve("precisewikiqa/tiny/abstain_eval_raw.jsonl"))
                .doesNotContain("Starting server").doesNotContain("Ready: ")
                .contains("inference: 4 records (4 resumed").doesNotContain("records/s");
        assertThat(again.out().split("nothing to do \\(no server started\\)", -1)).hasSize(4);
        assertThat(again.out()).as("the metrics are still computed from the files").contains("eval: halu_rate n/a");
        assertThat(serverFiles()).as("no lease or log of a server start").isEqualTo(filesBefore);
        JsonNode after = JSON.readTree(results.toFile());
        assertThat(after.get("counts")).isEqualTo(before.get("counts"));
        assertThat(after.get("samples")).isEqualTo(before.get("samples"));
        assertThat(TetherHomes.jsonLines(out().resolve("precisewikiqa/tiny/generation.jsonl"))).hasSize(4);
    }

    @Test
    void aRunKilledMidInferenceResumesWithNothingLostOrDuplicated() throws Exception {
        int n = 60;
        writeQuestions(n);
        String[] inference = wiki("--step", "inference", "--N", String.valueOf(n), "--port", "auto", "--concurrency", "1",
                "--max-tokens", "300");
        Path generations = out().resolve("precisewikiqa/tiny/generation.jsonl");
        var victim = start(inference);
        assertThat(Poll.until(() -> count(generations) >= 10 || !victim.process.isAlive(), RUN, Duration.ofMillis(10)))
                .isTrue();
        assertThat(victim.process.isAlive()).as("still mid-run when killed\n%s", victim.err()).isTrue();
        Signaller.send(victim.identity(), Signal.KILL);
        // The watchdog stops the orphaned server.
        assertThat(Poll.until(() -> processesOf(home()).isEmpty(), TetherHomes.WATCHDOG, Duration.ofMillis(20)))
                .as("run's processes gone after kill -9: %s", processesOf(home())).isTrue();
        long partial = count(generations);
        assertThat(partial).isLessThan(n);

        var resumed = finish(0, inference);
        List<JsonNode> records = TetherHomes.jsonLines(generations);
        assertThat(records).hasSize(n);
        Set<Integer> indexes = new HashSet<>();
        records.forEach(r -> indexes.add(r.get("index").asInt()));
        assertThat(indexes).hasSize(n);
        assertThat(resumed.out()).contains("resumed");
    }

    @Test
    void aServerKilledMidRunIsRestartedAndTheRunCompletes() throws Exception {
        int n = 40;
        writeQuestions(n);
        Path generations = out().resolve("precisewikiqa/tiny/generation.jsonl");
        var run = start(wiki("--step", "inference", "--N", String.valueOf(n), "--port", "auto", "--concurrency", "2",
                "--max-tokens", "300"));
        assertThat(Poll.until(() -> count(generations) >= 5 || !run.process.isAlive(), RUN, Duration.ofMillis(10))).isTrue();
        List<Lease> leases = leases(home());
        assertThat(leases).hasSize(1);
        ProcessIdentity server = leases.getFirst().server();
        Signaller.send(server, Signal.KILL);
        assertThat(run.awaitExit(RUN)).as(run.err()).isZero();
        assertThat(run.err()).contains("restarting it");
        List<JsonNode> records = TetherHomes.jsonLines(generations);
        assertThat(records).hasSize(n).allSatisfy(r -> assertThat(r.has("error")).isFalse());
    }

    @Test
    void promptsTaskWritesOneGenerationPerLine() throws Exception {
        Path input = dir.resolve("prompts.jsonl");
        Files.writeString(input, "{\"id\":\"a\",\"prompt\":\"Hello\"}\n{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3}\n"
                + "{\"id\":7,\"prompt\":\"x\",\"temperature\":0.5,\"seed\":1}\n");
        Path output = dir.resolve("gens.jsonl");
        finish(0, "run", "--task", "prompts", "--model", "tiny", "--input", input.toString(), "--output", output.toString(),
                "--port", "auto", "--max-tokens", "8");
        List<JsonNode> records = TetherHomes.jsonLines(output);
        assertThat(records).hasSize(3).allSatisfy(r -> {
            assertThat(r.get("generation").isTextual()).isTrue();
            assertThat(r.get("usage").get("completion_tokens").asInt()).isPositive();
            assertThat(r.get("finish_reason").isTextual()).isTrue();
        });
        assertThat(records).anySatisfy(r -> assertThat(r.path("line").asInt(-1)).isEqualTo(2));
        // A re-run finds everything done: nothing is sent twice, and no server is started for nothing.
        String[] again = {"run", "--task", "prompts", "--model", "tiny", "--input", input.toString(), "--output",
                output.toString(), "--port", "auto", "--max-tokens", "8"};   // the same settings (others are refused)
        var complete = finish(0, again);
        assertThat(complete.out()).contains("prompts: all 3 records already in " + output + "; nothing to do (no server started)")
                .doesNotContain("Starting server").contains("prompts: 3 records (3 resumed").contains("Done.");
        assertThat(TetherHomes.jsonLines(output)).hasSize(3);

        // A partly complete output starts the server for what is missing: here the last record is torn in half,
        // as a kill -9 in the middle of its write would leave it.
        List<String> kept = Files.readAllLines(output);
        String last = kept.getLast();
        Files.writeString(output, String.join("\n", kept.subList(0, 2)) + "\n" + last.substring(0, last.length() / 2));
        var partial = finish(0, again);
        assertThat(partial.out()).contains("Starting server").doesNotContain("nothing to do")
                .contains("prompts: 3 records (2 resumed");
        assertThat(TetherHomes.jsonLines(output)).hasSize(3);
        assertThat(output.resolveSibling(output.getFileName() + ".torn")).exists();
    }

    @Test
    void requestsThatKeepFailingBecomeFailureRecordsAndAReRunRetriesThem() throws Exception {
        Path input = dir.resolve("prompts.jsonl");
        Files.writeString(input, "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"prompt\":\"b\"}\n{\"id\":3,\"prompt\":\"c\"}\n");
        Path output = dir.resolve("gens.jsonl");
        String failing = String.join(" ", Fixture.command(dev.tether.fixtures.FlakyOpenAiServer.class,
                "--port", "{port}", "--fail-first", "1000000", "--fail-status", "500"));
        var failed = finish(1, "run", "--task", "prompts", "--model", "m", "--command", failing, "--input", input.toString(),
                "--output", output.toString(), "--port", "auto", "--retries", "1");
        assertThat(failed.out()).contains("3 failed");
        assertThat(TetherHomes.jsonLines(output)).hasSize(3).allSatisfy(r -> {
            assertThat(r.get("generation").isNull()).isTrue();
            assertThat(r.get("error").get("kind").asText()).isEqualTo("server_error");
            assertThat(r.get("error").get("attempts").asInt()).isEqualTo(2);
        });

        String healthy = String.join(" ", Fixture.command(dev.tether.fixtures.FlakyOpenAiServer.class, "--port", "{port}"));
        var retried = finish(0, "run", "--task", "prompts", "--model", "m", "--command", healthy, "--input", input.toString(),
                "--output", output.toString(), "--port", "auto");
        List<JsonNode> records = TetherHomes.jsonLines(output);
        assertThat(records).hasSize(3).allSatisfy(r -> {
            assertThat(r.has("error")).isFalse();
            assertThat(r.get("generation").asText()).isEqualTo(dev.tether.fixtures.FlakyOpenAiServer.TEXT);
        });
        assertThat(retried.out()).as("failure records are work left: the server starts").contains("Starting server")
                .doesNotContain("nothing to do");
    }

    private static long count(Path file) {
        return TetherHomes.lineCount(file);
    }
}
