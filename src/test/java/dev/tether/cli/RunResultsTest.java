package dev.tether.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FlakyOpenAiServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@code tether run} reports must be true: metrics with nothing judged, provenance on resume, the order and
 * places of the files HalluLens reads. The server is {@link FlakyOpenAiServer} (through {@code --command}), whose
 * replies a test scripts with {@code --answers}, so that verdicts are readable and fast.
 */
class RunResultsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration RUN = Duration.ofMinutes(3);
    /** Judge replies a reader understands: nobody abstains, every answer is correct. */
    static final String READABLE_JUDGE = "declines to answer\t{\"is_abstaining\": false}\nJudge a response\tCORRECT\n";

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path out() {
        return dir.resolve("out");
    }

    BackgroundTether finish(int expectedExit, String... args) throws Exception {
        BackgroundTether t = tethers.start(dir, args);
        assertThat(t.awaitExit(RUN)).as("exit code\nstdout:\n%s\nstderr:\n%s", t.out(), t.err()).isEqualTo(expectedExit);
        return t;
    }

    /** The fixture server as a --command, replying as the answers script says (none: always FlakyOpenAiServer.TEXT). */
    String server(String answers) throws IOException {
        List<String> args = new ArrayList<>(List.of("--port", "{port}"));
        if (answers != null) {
            Path file = Files.createTempFile(dir, "answers", ".tsv");
            Files.writeString(file, answers);
            args.addAll(List.of("--answers", file.toString()));
        }
        return String.join(" ", Fixture.command(FlakyOpenAiServer.class, args.toArray(String[]::new)));
    }

    String[] wiki(String command, String... args) {
        List<String> all = new ArrayList<>(List.of("run", "--task", "precisewikiqa", "--model", "m", "--command", command,
                "--port", "auto", "--output-dir", out().toString()));
        all.addAll(List.of(args));
        return all.toArray(String[]::new);
    }

    /** A questions file as generate writes it (for model m), with distinct questions "What is item i?". */
    void writeQuestions(Path file, int n) throws IOException {
        Files.createDirectories(file.getParent());
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < n; i++) {
            lines.append(JSON.writeValueAsString(Map.of("title", "Topic " + i, "h_score_cat", 8 + i % 2,
                    "reference", "Reference text " + i, "prompt", "What is item " + i + "?", "answer", "item " + i,
                    "candidate", i))).append('\n');
        }
        Files.writeString(file, lines);
    }

    Path questions() {
        return out().resolve("precise_qa/qa_goodwiki_m_dynamic.jsonl");
    }

    Path modelDir() {
        return out().resolve("precisewikiqa/m");
    }

    // ------------------------------------------------------------------ 9: metrics with nothing judged

    @Test
    void aJudgeWhoseVerdictsCannotBeReadGivesNoMetricsAndExit1() throws Exception {
        writeQuestions(questions(), 4);
        var run = finish(1, wiki(server(null), "--step", "all", "--N", "4"));
        assertThat(run.out()).as("the metrics line is on stdout, with n/a for rates over nothing")
                .contains("eval: halu_rate n/a, refusal_rate n/a, correct_rate n/a (4 samples")
                .contains("eval: WARNING: the verdicts of 4 of 4 samples could not be read")
                .doesNotContain("halu_rate 0.000");
        assertThat(run.err()).contains("tether: eval: none of the 4 verdicts of the judge m could be read");
        assertThat(run.err().lines().filter(l -> !l.isBlank())).as("one line on stderr:\n%s", run.err()).hasSize(1);
        JsonNode results = JSON.readTree(modelDir().resolve("eval_results.json").toFile());
        for (String rate : List.of("halu_rate", "refusal_rate", "correct_rate")) {
            assertThat(results.get(rate).isNull()).as(rate).isTrue();
        }
        assertThat(results.get("counts").get("unparsed_abstention").asInt()).isEqualTo(4);
    }

    @Test
    void readableVerdictsGiveMetricsOnStdoutAndExit0() throws Exception {
        writeQuestions(questions(), 4);
        var run = finish(0, wiki(server(READABLE_JUDGE), "--step", "all", "--N", "4"));
        assertThat(run.out()).contains("eval: halu_rate 0.000, refusal_rate 0.000, correct_rate 1.000 (4 samples")
                .doesNotContain("WARNING").contains("Done.");
        assertThat(run.err()).doesNotContain("halu_rate");
        JsonNode results = JSON.readTree(modelDir().resolve("eval_results.json").toFile());
        assertThat(results.get("halu_rate").asDouble()).isEqualTo(0.0);
        assertThat(results.get("correct_rate").asDouble()).isEqualTo(1.0);
    }

    // ------------------------------------------------------------------ 10: a resume must not mix models or settings

    /** Exit 2 with one line on stderr that names the difference and both ways on, and no server started. */
    private void refused(BackgroundTether run, String difference, String elsewhere) {
        assertThat(run.err().lines().filter(l -> !l.isBlank()).toList()).as(run.err()).hasSize(1).first().asString()
                .startsWith("tether: ").contains("holds records made with other settings").contains(difference)
                .contains("--no-resume").contains(elsewhere);
        assertThat(run.out()).doesNotContain("Starting server");
    }

    @Test
    void promptsRefuseToResumeWithAnotherModelOrSettings() throws Exception {
        Path input = dir.resolve("prompts.jsonl");
        Files.writeString(input, "{\"id\":\"a\",\"prompt\":\"Hello\"}\n{\"prompt\":\"Hi\",\"max_tokens\":3}\n");
        Path output = dir.resolve("gens.jsonl");
        String command = server(null);
        List<String> base = List.of("run", "--task", "prompts", "--command", command, "--input", input.toString(),
                "--output", output.toString(), "--port", "auto");
        java.util.function.Function<List<String>, String[]> with = extra -> {
            List<String> all = new ArrayList<>(base);
            all.addAll(extra);
            return all.toArray(String[]::new);
        };
        finish(0, with.apply(List.of("--model", "m")));
        assertThat(TetherHomes.jsonLines(output)).hasSize(2).allSatisfy(r -> {
            assertThat(r.get("produced_by").get("model").asText()).isEqualTo("m");
            assertThat(r.get("produced_by").get("max_tokens").asInt()).isEqualTo(128);
            assertThat(r.get("produced_by").get("temperature").asDouble()).isEqualTo(0.0);
        });
        String before = Files.readString(output);

        refused(finish(2, with.apply(List.of("--model", "other"))), "--model m there, other now", "--output");
        refused(finish(2, with.apply(List.of("--model", "m", "--max-tokens", "64"))), "--max-tokens 128 there, 64 now",
                "--output");
        refused(finish(2, with.apply(List.of("--model", "m", "--temperature", "0.5"))), "--temperature 0.0 there, 0.5 now",
                "--output");
        assertThat(Files.readString(output)).as("a refused resume changes nothing").isEqualTo(before);
        // The same settings resume (nothing to do); --no-resume starts over with the new ones.
        assertThat(finish(0, with.apply(List.of("--model", "m"))).out()).contains("nothing to do");
        finish(0, with.apply(List.of("--model", "m", "--max-tokens", "64", "--no-resume")));
        assertThat(TetherHomes.jsonLines(output)).hasSize(2)
                .allSatisfy(r -> assertThat(r.get("produced_by").get("max_tokens").asInt()).isEqualTo(64));
    }

    @Test
    void evalRefusesToResumeWithAnotherJudgeAndInferenceWithOtherSettings() throws Exception {
        writeQuestions(questions(), 2);
        String command = server(READABLE_JUDGE);
        finish(0, wiki(command, "--step", "all", "--N", "2"));
        assertThat(TetherHomes.jsonLines(modelDir().resolve("generation.jsonl"))).hasSize(2).allSatisfy(r -> {
            assertThat(r.get("produced_by").get("model").asText()).isEqualTo("m");
            assertThat(r.get("produced_by").get("max_tokens").asInt()).isEqualTo(128);
        });
        assertThat(TetherHomes.jsonLines(modelDir().resolve("abstain_eval_raw.jsonl")))
                .allSatisfy(r -> assertThat(r.get("produced_by").get("judge").asText()).isEqualTo("m"));
        Path results = modelDir().resolve("eval_results.json");
        String before = Files.readString(results);

        refused(finish(2, wiki(command, "--step", "eval", "--N", "2", "--judge", "j2")), "--judge m there, j2 now",
                "--output-dir");
        assertThat(Files.readString(results)).as("the old verdicts keep their judge").isEqualTo(before);
        refused(finish(2, wiki(command, "--step", "inference", "--N", "2", "--max-tokens", "50")),
                "--max-tokens 128 there, 50 now", "--output-dir");
        refused(finish(2, wiki(command, "--step", "all", "--N", "2", "--judge", "j2")), "--judge m there, j2 now",
                "--output-dir");

        var again = finish(0, wiki(command, "--step", "eval", "--N", "2", "--judge", "j2", "--no-resume"));
        assertThat(again.out()).contains("Starting server");
        assertThat(JSON.readTree(results.toFile()).get("evaluator_abstention").asText()).isEqualTo("j2");
        assertThat(TetherHomes.jsonLines(modelDir().resolve("abstain_eval_raw.jsonl")))
                .allSatisfy(r -> assertThat(r.get("produced_by").get("judge").asText()).isEqualTo("j2"));
    }

    // ------------------------------------------------------------------ 11: HalluLens reads tether's files

    /**
     * Scripted replies: item 0's answer and abstention verdict come late (so they are written last), item 1 abstains,
     * item 2's answer is judged incorrect; everything else is a readable "not abstaining" and "CORRECT".
     */
    static final String SCRIPT = String.join("\n",
            "Answer the question in one sentence.*What is item 0\\?\tItem zero it is.\t1500",
            "declines to answer.*What is item 0\\?\t{\"is_abstaining\":false}\t1500",
            "declines to answer.*What is item 1\\?\t{\"is_abstaining\":true}",
            "declines to answer\t{\"is_abstaining\": false}",
            "Judge a response.*What is item 2\\?\tINCORRECT",
            "Judge a response\tCORRECT") + "\n";

    @Test
    void theHalluLensLayoutIsReadByTheOriginalsPositionalLogic() throws Exception {
        // --layout hallulens without --output-dir: the working directory is the HalluLens checkout.
        writeQuestions(dir.resolve("data/precise_qa/save/qa_goodwiki_m_dynamic.jsonl"), 4);
        var run = finish(0, "run", "--task", "precisewikiqa", "--layout", "hallulens", "--step", "all", "--N", "4",
                "--model", "m", "--command", server(SCRIPT), "--port", "auto");
        Path outDir = dir.resolve("output/precise_wikiqa_goodwiki_dynamic/m");
        assertThat(dir.resolve("precisewikiqa")).doesNotExist();
        assertThat(dir.resolve("precise_qa")).doesNotExist();
        assertThat(run.out()).contains("output/precise_wikiqa_goodwiki_dynamic/m/generation.jsonl");

        // precise_wikiqa.py, --do_inference: QAs = [line for line in jsonlines.open(QA_OUTPUT_PATH)][:N]
        List<JsonNode> qas = TetherHomes.jsonLines(dir.resolve("data/precise_qa/save/qa_goodwiki_m_dynamic.jsonl")).subList(0, 4);
        // PreciseQAEval: test_df = pd.read_json(generation.jsonl, lines=True): rows in file order, paired by position
        List<JsonNode> testDf = TetherHomes.jsonLines(outDir.resolve("generation.jsonl"));
        assertThat(testDf).hasSize(4);
        for (int i = 0; i < 4; i++) {
            assertThat(testDf.get(i).get("prompt").asText()).as("row %d", i).isEqualTo(qas.get(i).get("prompt").asText());
            assertThat(testDf.get(i).get("generation").isTextual()).isTrue();
        }
        assertThat(testDf.get(0).get("generation").asText()).as("the late answer is in its row").isEqualTo("Item zero it is.");
        // eval_abstention: abstains_eval_raw = [json.loads(line)["eval_res"] for line in f], zipped with the rows
        List<String> raw = TetherHomes.jsonLines(outDir.resolve("abstain_eval_raw.jsonl")).stream()
                .map(l -> l.get("eval_res").asText()).toList();
        assertThat(raw).hasSize(testDf.size());
        List<Boolean> refusal = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) {
            refusal.add(jsonifyAbstention(raw.get(i)));
            // process_res: json.loads(x)['is_abstaining'] on each raw reply
            assertThat(JSON.readTree(raw.get(i)).get("is_abstaining").asBoolean()).isEqualTo(refusal.get(i));
        }
        assertThat(refusal).as("row i's verdict is question i's").containsExactly(false, true, false, false);

        JsonNode results = JSON.readTree(outDir.resolve("eval_results.json").toFile());
        assertThat(results.get("model").asText()).isEqualTo("m");
        assertThat(results.get("evaluator_abstantion").asText()).isEqualTo("m");
        assertThat(results.get("evaluator_hallucination").asText()).isEqualTo("m");
        assertThat(results.get("halu_Rate").asDouble()).isEqualTo(1 / 3.0);
        assertThat(results.get("refusal_rate").asDouble()).isEqualTo(0.25);
        assertThat(results.get("correct_rate").asDouble()).isEqualTo(0.5);
        assertThat(JSON.convertValue(results.get("abstantion"), List.class)).containsExactly(false, true, false, false);
        assertThat(JSON.convertValue(results.get("halu_test_res"), List.class)).containsExactly(false, null, true, false);
        assertThat(results.get("abstantion_raw_generation").get(1).asText()).isEqualTo(raw.get(1));
        // The raw files a user reads are in index order too.
        assertThat(TetherHomes.jsonLines(outDir.resolve("abstain_eval_raw.jsonl")).stream().map(l -> l.get("index").asInt()))
                .containsExactly(0, 1, 2, 3);
        assertThat(TetherHomes.jsonLines(outDir.resolve("halu_eval_raw.jsonl")).stream().map(l -> l.get("index").asInt()))
                .containsExactly(0, 2, 3);
    }

    /** eval_utils.jsonify_ans's check_validity: the key's JSON with spaces removed, anywhere in the reply. */
    private static Boolean jsonifyAbstention(String reply) throws IOException {
        String noSpace = reply.replace(" ", "");
        if (noSpace.contains("{\"is_abstaining\":false}")) {
            return false;
        }
        if (noSpace.contains("{\"is_abstaining\":true}")) {
            return true;
        }
        return JSON.readTree(reply.split("\n")[0]).get("is_abstaining").asBoolean();
    }

    @Test
    void promptsOutputIsInInputOrderWhenTheStepEnds() throws Exception {
        Path input = dir.resolve("prompts.jsonl");
        Files.writeString(input, "{\"id\":\"z\",\"prompt\":\"slow one\"}\n{\"prompt\":\"second\"}\n"
                + "{\"id\":\"a\",\"prompt\":\"third\"}\n{\"id\":5,\"prompt\":\"fourth\"}\n");
        Path output = dir.resolve("gens.jsonl");
        var run = finish(0, "run", "--task", "prompts", "--model", "m", "--command", server("slow one\tlate\t1500\n"),
                "--input", input.toString(), "--output", output.toString(), "--port", "auto");
        List<JsonNode> records = TetherHomes.jsonLines(output);
        assertThat(records.stream().map(r -> r.get("prompt").asText())).containsExactly("slow one", "second", "third", "fourth");
        assertThat(records.getFirst().get("generation").asText()).isEqualTo("late");
        assertThat(run.out().lines().filter(l -> l.startsWith("prompts 100%"))).as("the 100%% line once:\n%s", run.out())
                .hasSize(1);
        assertThat(dir.resolve("output")).as("--output given: no stray output/ in the working directory").doesNotExist();
    }

    // ------------------------------------------------------------------ 12: smaller

    @Test
    void aMissingModelFileIsExit2BeforeAnyServerStarts() throws Exception {
        Path input = dir.resolve("prompts.jsonl");
        Files.writeString(input, "{\"prompt\":\"a\"}\n");
        for (String model : List.of(dir.resolve("missing.gguf").toString(), "./nowhere/model.gguf")) {
            var run = finish(2, "run", "--task", "prompts", "--model", model, "--input", input.toString(), "--output",
                    dir.resolve("o.jsonl").toString(), "--port", "auto");
            assertThat(run.err().strip()).isEqualTo("tether: model file not found: " + model
                    + " (give the path of an existing model file or directory, or --model tiny)");
            assertThat(run.out()).doesNotContain("Starting server");
        }
        assertThat(dir.resolve("home/logs")).as("no server was ever started").doesNotExist();
    }

    @Test
    void aRunThatFailsBeforeGeneratingLeavesNoWikiCopy() throws Exception {
        var run = finish(3, wiki("/bin/false {port}", "--step", "generate", "--N", "2"));
        assertThat(run.err()).contains("failed to start");
        assertThat(out().resolve("data")).doesNotExist();
    }

    @Test
    void versionCarriesTheCommit() throws Exception {
        var run = finish(0, "--version");
        assertThat(run.out()).containsPattern("^tether .*, commit [0-9a-f]{12}(-dirty)? — Java ");
    }
}
