package dev.tether.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.fixtures.FlakyOpenAiServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code run --task triviaqa}: against a scripted {@link FlakyOpenAiServer} whose answers are known, so the verdicts
 * (gold alias found in the answer, ignoring case) and the metrics are checked exactly; and on the embedded tiny model.
 */
class TriviaQaTaskTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, String> NO_KEY = Map.of("OPENAI_API_KEY", "");

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    /** Four questions in TriviaQA's JSON, with the heavy fields the real files have (skipped by the reader). */
    private Path data() throws Exception {
        return Files.writeString(dir.resolve("trivia.json"), """
                {"Version": 1.0, "Data": [
                 {"Question": "What is the capital of France?", "QuestionId": "q1", "SearchResults": [{"Description": "..."}],
                  "Answer": {"Aliases": ["Paris", "Paris, France"], "Value": "Paris"}},
                 {"Question": "Which is the largest planet?", "QuestionId": "q2",
                  "Answer": {"Aliases": ["Jupiter"], "Value": "Jupiter"}},
                 {"Question": "Who wrote Hamlet?", "QuestionId": "q3",
                  "Answer": {"Aliases": ["Shakespeare", "William Shakespeare"]}},
                 {"Question": "At what Celsius temperature does water boil?", "QuestionId": "q4",
                  "Answer": {"Aliases": ["100", "one hundred"]}}
                ], "Domain": "Web"}
                """);
    }

    private Path answers(String... lines) throws Exception {
        return Files.writeString(Files.createTempFile(dir, "answers", ".tsv"), String.join("\n", lines) + "\n");
    }

    private TetherCli.Result trivia(FlakyOpenAiServer server, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("run", "--task", "triviaqa", "--model", "m", "--url", server.baseUrl(),
                "--data", data().toString(), "--output-dir", dir.resolve("out").toString(), "--retries", "0"));
        args.addAll(List.of(more));
        return TetherCli.run(tethers.home(), NO_KEY, args.toArray(String[]::new));
    }

    private Path modelDir() {
        return dir.resolve("out/triviaqa/m");
    }

    @Test
    void answersAreJudgedAgainstTheGoldAliasesAndAFailedOneIsRetriedOnTheNextRun() throws Exception {
        Path script = answers("capital of France\tIt is paris, of course.", "largest planet\tSaturn",
                "wrote Hamlet\tWILLIAM SHAKESPEARE wrote it.", "water boil\tHTTP 500");
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--answers", script.toString())) {
            TetherCli.Result r = trivia(server);
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isEqualTo(1);
            assertThat(r.out()).contains("eval: correct_rate 0.667, halu_rate 0.333 (incorrect), refusal_rate n/a")
                    .contains("(4 samples: 2 correct, 1 incorrect; 1 failed generations, 0 without a generation)");
            assertThat(r.err().strip().lines()).hasSize(1).first().asString().contains("1 record failed (inference: 1 of 4");
            List<JsonNode> generations = TetherHomes.jsonLines(modelDir().resolve("generation.jsonl"));
            assertThat(generations).extracting(g -> g.get("question_id").asText()).containsExactly("q1", "q2", "q3", "q4");
            assertThat(generations.getFirst().get("prompt").asText()).isEqualTo("Q: What is the capital of France?\nA:");
            assertThat(generations.getFirst().get("correct_answers")).hasSize(2);
            assertThat(generations.get(3).get("generation").isNull()).isTrue();
            assertThat(generations.get(3).get("error").get("status").asInt()).isEqualTo(500);
            JsonNode results = JSON.readTree(modelDir().resolve("eval_results.json").toFile());
            assertThat(results.get("correct_rate").asDouble()).isEqualTo(2 / 3.0);
            assertThat(results.get("halu_rate").asDouble()).isEqualTo(1 / 3.0);
            assertThat(results.get("refusal_rate").isNull()).as("not judged, so no number").isTrue();
            assertThat(results.get("counts").get("failed_generations").asInt()).isEqualTo(1);
            assertThat(results.get("samples")).extracting(s -> s.get("verdict").asText())
                    .containsExactly("correct", "incorrect", "correct", "failed_generation");
        }
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--answers",
                answers("water boil\tAt 100 degrees.").toString())) {
            TetherCli.Result again = trivia(server);
            assertThat(again.exitCode()).as("stdout:\n%s\nstderr:\n%s", again.out(), again.err()).isZero();
            assertThat(server.requests()).as("only the failed question is asked again").isEqualTo(1);
            assertThat(again.out()).contains("inference: 4 records (3 resumed from an earlier run), 0 failed")
                    .contains("eval: correct_rate 0.750, halu_rate 0.250");
            byte[] generations = Files.readAllBytes(modelDir().resolve("generation.jsonl"));
            TetherCli.Result third = trivia(server);
            assertThat(third.exitCode()).isZero();
            assertThat(third.out()).contains("inference: all 4 records already in").contains("eval: correct_rate 0.750");
            assertThat(server.requests()).isEqualTo(1);
            assertThat(Files.readAllBytes(modelDir().resolve("generation.jsonl"))).isEqualTo(generations);
        }
    }

    @Test
    void theHallulensLayoutWritesTheOriginalsPathsAndKeys() throws Exception {
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--answers",
                answers("capital of France\tParis", "largest planet\tI do not know.").toString())) {
            TetherCli.Result r = trivia(server, "--layout", "hallulens", "--N", "2");
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
            Path results = dir.resolve("out/output/triviaqa_unfiltered_dev/m/eval_results.json");
            JsonNode json = JSON.readTree(results.toFile());
            assertThat(json.get("halu_Rate").asDouble()).isEqualTo(0.5);
            assertThat(json.get("correct_rate").asDouble()).isEqualTo(0.5);
            assertThat(json.get("evaluator_hallucination").asText()).isEqualTo("triviaqa_string_matching");
            assertThat(json.get("halu_test_res")).extracting(JsonNode::asBoolean).containsExactly(false, true);
            assertThat(json.get("answer").get(0).asText()).isEqualTo("['Paris', 'Paris, France']");
            assertThat(dir.resolve("out/output/triviaqa_unfiltered_dev/m/generation.jsonl")).exists();
        }
    }

    @Test
    void aQuestionWithoutGoldAliasesIsAnInputErrorNamingIt() throws Exception {
        Path bad = Files.writeString(dir.resolve("bad.json"),
                "{\"Data\": [{\"Question\": \"a?\", \"Answer\": {\"Aliases\": [\"x\"]}}, {\"Question\": \"b?\", \"Answer\": {}}]}");
        TetherCli.Result r = TetherCli.run(tethers.home(), NO_KEY, "run", "--task", "triviaqa", "--model", "m",
                "--url", "http://127.0.0.1:9", "--data", bad.toString(), "--output-dir", dir.resolve("out").toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("tether: " + bad + ": Data[1] has no \"Answer\": {\"Aliases\": [...]} "
                + "(the gold answers it is judged against)");
    }

    @Test
    void onTheTinyModelTheBundledSampleRunsAndARerunStartsNoServer() throws Exception {
        String[] args = {"run", "--task", "triviaqa", "--model", "tiny", "--N", "3", "--max-tokens", "8", "--port", "auto",
                "--output-dir", dir.resolve("out").toString()};
        TetherCli.Result r = TetherCli.run(tethers.home(), args);
        assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
        assertThat(r.out()).contains("Ready:").contains("inference: 3 records (0 resumed").contains("(3 samples:");
        Path dirTiny = dir.resolve("out/triviaqa/tiny");
        List<JsonNode> generations = TetherHomes.jsonLines(dirTiny.resolve("generation.jsonl"));
        assertThat(generations).hasSize(3).allSatisfy(g -> assertThat(g.get("generation").isTextual()).isTrue());
        JsonNode results = JSON.readTree(dirTiny.resolve("eval_results.json").toFile());
        assertThat(results.get("counts").get("correct").asInt() + results.get("counts").get("incorrect").asInt()).isEqualTo(3);
        byte[] before = Files.readAllBytes(dirTiny.resolve("generation.jsonl"));
        TetherCli.Result again = TetherCli.run(tethers.home(), args);
        assertThat(again.exitCode()).as("stdout:\n%s\nstderr:\n%s", again.out(), again.err()).isZero();
        assertThat(again.out()).contains("inference: all 3 records already in").doesNotContain("Starting server");
        assertThat(Files.readAllBytes(dirTiny.resolve("generation.jsonl"))).isEqualTo(before);
        TetherHomes.assertNoProcessesOf(tethers.home());
    }
}
