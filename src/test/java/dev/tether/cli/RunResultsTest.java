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
}
