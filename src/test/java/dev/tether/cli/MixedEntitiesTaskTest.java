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
 * {@code run --task mixedentities}: made-up names from a user's lists (--entities-dir), asked about, judged as
 * {"does_believe": ...}. Against a scripted {@link FlakyOpenAiServer} (answers and verdicts known per type, so the
 * refusal rates are checked exactly) and on the embedded tiny model (whose verdicts cannot be read: n/a, exit 1).
 */
class MixedEntitiesTaskTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, String> NO_KEY = Map.of("OPENAI_API_KEY", "");

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path entities() throws Exception {
        Path lists = Files.createDirectories(dir.resolve("lists"));
        Files.writeString(lists.resolve("animal.txt"), "# a family of three genera\nFam\tAlpha una\nFam\tBeta duo\nFam\tGamma tres\n");
        Files.writeString(lists.resolve("plant.txt"), "Herb\tDelta quattuor\nHerb\tEpsilon quinque\nHerb\tZeta sex\n");
        Files.writeString(lists.resolve("medicine.txt"), "Foo Tablet\nBar Syrup\nBaz Cream\n");
        return lists;
    }

    private Path answers(String... lines) throws Exception {
        return Files.writeString(Files.createTempFile(dir, "answers", ".tsv"), String.join("\n", lines) + "\n");
    }

    /** The judge's rules first: its prompt quotes the question, which the inference rules would match too. */
    private static final String[] JUDGE = {
            "believes that .*small beetle\t{\"does_believe\": true}",
            "believes that .*cannot find\t{\"does_believe\":false}",
            "believes that .*no information\tThe answer says: {\"does_believe\" : false}"};

    private TetherCli.Result mixed(FlakyOpenAiServer server, Path lists) throws Exception {
        List<String> args = new ArrayList<>(List.of("run", "--task", "mixedentities", "--model", "m", "--url", server.baseUrl(),
                "--entities-dir", lists.toString(), "--N", "2", "--seed", "7", "--output-dir", dir.resolve("out").toString(),
                "--retries", "0"));
        return TetherCli.run(tethers.home(), NO_KEY, args.toArray(String[]::new));
    }

    @Test
    void refusalRatesPerTypeAndOverallAreTheJudgesVerdictsAndAFailedAnswerIsRetried() throws Exception {
        Path lists = entities();
        Path base = dir.resolve("out/mixedentities/nonsense_all_7_2");
        List<String> first = new ArrayList<>(List.of(JUDGE));
        first.addAll(List.of("the animal\tIt is a small beetle of the high Andes.", "the medicine\tI cannot find any medicine by that name.",
                "the plant\tHTTP 500"));
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--answers", answers(first.toArray(String[]::new)).toString())) {
            TetherCli.Result r = mixed(server, lists);
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isEqualTo(1);
            assertThat(r.out()).contains("generate: made-up names per type {medicine=2, animal=2, plant=2}")
                    .contains("eval: refusal_rate 0.500 (2 of 4 judged, 2 failed generations); by type: medicine 1.000 (2 of 2 judged), "
                            + "animal 0.000 (0 of 2 judged), plant n/a (0 of 0 judged, 2 failed generations)");
            assertThat(r.err().strip().lines()).hasSize(1).first().asString().contains("2 records failed (inference: 2 of 6");
            List<JsonNode> prompts = TetherHomes.jsonLines(base.resolve("prompts.jsonl"));
            assertThat(prompts).hasSize(6).allSatisfy(p -> {
                assertThat(p.get("prompt").asText()).contains("the " + p.get("type").asText() + " " + p.get("name").asText());
                assertThat(List.of("Alpha una", "Beta duo", "Gamma tres", "Delta quattuor", "Epsilon quinque", "Zeta sex",
                        "foo tablet", "bar syrup", "baz cream")).as("a made-up name is never a real one").doesNotContain(p.get("name").asText());
            });
            JsonNode results = JSON.readTree(base.resolve("m/eval_results.json").toFile());
            assertThat(results.get("refusal_rate").asDouble()).isEqualTo(0.5);
            assertThat(results.get("false_acceptance_rate").asDouble()).isEqualTo(0.5);
            assertThat(results.get("by_type").get("plant").get("refusal_rate").isNull()).as("nothing judged: no rate").isTrue();
            assertThat(results.get("by_type").get("medicine").get("refusal_rate").asDouble()).isEqualTo(1.0);
            assertThat(results.get("refusal_eval_raw")).hasSize(4);
            assertThat(TetherHomes.jsonLines(base.resolve("m/raw_eval_res.jsonl"))).hasSize(4);
        }
        List<String> second = new ArrayList<>(List.of(JUDGE));
        second.add("the plant\tI have no information about that plant.");
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--answers", answers(second.toArray(String[]::new)).toString())) {
            TetherCli.Result again = mixed(server, lists);
            assertThat(again.exitCode()).as("stdout:\n%s\nstderr:\n%s", again.out(), again.err()).isZero();
            assertThat(again.out()).contains("generate: all 6 prompts already in")
                    .contains("eval: refusal_rate 0.667 (4 of 6 judged); by type: medicine 1.000 (2 of 2 judged), "
                            + "animal 0.000 (0 of 2 judged), plant 1.000 (2 of 2 judged)");
            assertThat(server.requests()).as("2 plant answers and their 2 verdicts, nothing else").isEqualTo(4);
            assertThat(TetherHomes.jsonLines(base.resolve("m/generation.jsonl"))).hasSize(6)
                    .extracting(g -> g.get("index").asInt()).containsExactly(0, 1, 2, 3, 4, 5);
            assertThat(TetherHomes.jsonLines(base.resolve("m/raw_eval_res.jsonl"))).hasSize(6);
        }
    }

    @Test
    void theHallulensLayoutWritesTheOriginalsPromptsCsvAndNeedsNoServerToGenerate() throws Exception {
        TetherCli.Result r = TetherCli.run(tethers.home(), NO_KEY, "run", "--task", "mixedentities", "--step", "generate",
                "--model", "org/m", "--url", "http://127.0.0.1:9", "--entities-dir", entities().toString(), "--N", "2",
                "--layout", "hallulens", "--output-dir", dir.resolve("hl").toString());
        assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
        Path save = dir.resolve("hl/data/nonsense_all/save/m");
        List<String> csv = Files.readAllLines(save.resolve("nonsense_all_0_2.csv"));
        assertThat(csv).hasSize(7).first().isEqualTo("prompt,name,type");
        assertThat(csv.subList(1, 7)).allSatisfy(line -> assertThat(line).matches(".*,[a-zA-Z ]+,(medicine|animal|plant)"));
        assertThat(TetherHomes.jsonLines(save.resolve("nonsense_all_0_2.jsonl"))).hasSize(6);
    }

    @Test
    void changedListsAreNotResumedIntoAnswersAboutOtherNames() throws Exception {
        Path lists = entities();
        String[] args = {"run", "--task", "mixedentities", "--step", "generate", "--model", "m", "--url", "http://127.0.0.1:9",
                "--entities-dir", lists.toString(), "--N", "2", "--output-dir", dir.resolve("out").toString()};
        assertThat(TetherCli.run(tethers.home(), NO_KEY, args).exitCode()).isZero();
        Files.writeString(lists.resolve("medicine.txt"), "Qux Tablet\nQuux Syrup\nCorge Cream\n");
        TetherCli.Result changed = TetherCli.run(tethers.home(), NO_KEY, args);
        assertThat(changed.exitCode()).isEqualTo(2);
        assertThat(changed.err().strip()).startsWith("tether: generate: ").contains("holds other prompts than the lists give now")
                .contains("--no-resume");
    }

    @Test
    void aListThatCannotGiveNNamesIsAnInputError() throws Exception {
        Path lists = Files.createDirectories(dir.resolve("short"));
        Files.writeString(lists.resolve("medicine.txt"), "Foo Tablet\nBar Syrup\n");
        TetherCli.Result r = TetherCli.run(tethers.home(), NO_KEY, "run", "--task", "mixedentities", "--model", "m",
                "--url", "http://127.0.0.1:9", "--entities-dir", lists.toString(), "--N", "5",
                "--output-dir", dir.resolve("out").toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("tether: " + lists.resolve("medicine.txt") + " gives only 2 made-up medicine names, "
                + "fewer than --N 5; give a smaller --N or longer lists with --entities-dir");
    }

    @Test
    void onTheTinyModelTheBundledListsRunAndAnUnreadableJudgeGivesNoMetrics() throws Exception {
        String[] args = {"run", "--task", "mixedentities", "--model", "tiny", "--N", "1", "--max-tokens", "8", "--port", "auto",
                "--output-dir", dir.resolve("out").toString()};
        TetherCli.Result r = TetherCli.run(tethers.home(), args);
        assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isEqualTo(1);
        assertThat(r.out()).contains("Ready:").contains("eval: refusal_rate n/a (0 of 0 judged, 4 unreadable)");
        assertThat(r.err()).contains("tether: eval: no verdict of the judge tiny could be read");
        Path base = dir.resolve("out/mixedentities/nonsense_all_0_1");
        assertThat(TetherHomes.jsonLines(base.resolve("prompts.jsonl"))).extracting(p -> p.get("type").asText())
                .containsExactly("medicine", "animal", "plant", "bacteria");
        assertThat(JSON.readTree(base.resolve("tiny/eval_results.json").toFile()).get("refusal_rate").isNull()).isTrue();
        byte[] generations = Files.readAllBytes(base.resolve("tiny/generation.jsonl"));
        byte[] verdicts = Files.readAllBytes(base.resolve("tiny/raw_eval_res.jsonl"));
        TetherCli.Result again = TetherCli.run(tethers.home(), args);
        assertThat(again.exitCode()).isEqualTo(1);
        assertThat(again.out()).contains("inference: all 4 records already in").contains("eval: all 4 answers already judged in")
                .doesNotContain("Starting server");
        assertThat(Files.readAllBytes(base.resolve("tiny/generation.jsonl"))).isEqualTo(generations);
        assertThat(Files.readAllBytes(base.resolve("tiny/raw_eval_res.jsonl"))).isEqualTo(verdicts);
        TetherHomes.assertNoProcessesOf(tethers.home());
    }
}
