package dev.tether.pipeline.precisewikiqa;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.pipeline.Jsonl;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The metrics from judge replies, including replies that cannot be read. */
class EvalResultsTest {

    @TempDir
    Path dir;

    @Test
    void ratesAndCountsFollowTheVerdicts() throws Exception {
        List<ObjectNode> samples = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            samples.add(Jsonl.JSON.createObjectNode().put("index", i).put("prompt", "q" + i).put("answer", "a" + i)
                    .put("generation", "g" + i));
        }
        Map<Integer, String> abstain = Map.of(
                0, "{\"is_abstaining\": false}",
                1, "{\"is_abstaining\": false}",
                2, "{\"is_abstaining\": false}",
                3, "{\"is_abstaining\": true}",
                4, "no idea what you mean",          // unparsed: counted, not guessed
                5, "{\"is_abstaining\": false}");
        Map<Integer, String> halu = Map.of(0, "CORRECT", 1, "Incorrect.", 2, "unverifiable", 5, "maybe?");
        Path file = dir.resolve("eval_results.json");

        PreciseWikiQa.Metrics m = PreciseWikiQa.writeResults(file, "model-x", "judge-y", samples, abstain, halu, 2);

        assertThat(m.abstained()).isEqualTo(1);
        assertThat(m.answered()).isEqualTo(4);
        assertThat(m.correct()).isEqualTo(1);
        assertThat(m.incorrect()).isEqualTo(1);
        assertThat(m.unverifiable()).isEqualTo(1);
        assertThat(m.unparsedAbstention()).isEqualTo(1);
        assertThat(m.unparsedVerdict()).isEqualTo(1);
        assertThat(m.haluRate()).isEqualTo(2 / 3.0);
        assertThat(m.refusalRate()).isEqualTo(1 / 5.0);
        assertThat(m.correctRate()).isEqualTo(1 / 5.0);

        JsonNode json = Jsonl.JSON.readTree(file.toFile());
        assertThat(json.get("halu_rate").asDouble()).isEqualTo(2 / 3.0);
        assertThat(json.get("counts").get("failed_generations").asInt()).isEqualTo(2);
        assertThat(json.get("evaluator_hallucination").asText()).isEqualTo("judge-y");
        assertThat(json.get("samples").get(4).get("verdict").asText()).isEqualTo("unparsed_abstention");
        assertThat(json.get("samples").get(5).get("verdict").asText()).isEqualTo("unparsed_hallucination");
        assertThat(json.get("samples").get(3).get("verdict").asText()).isEqualTo("abstained");
    }

    @Test
    void ratesOverNothingAreNullAndNotApplicableAndMostlyUnparsedIsLoud() throws Exception {
        List<ObjectNode> samples = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            samples.add(Jsonl.JSON.createObjectNode().put("index", i).put("prompt", "q" + i).put("answer", "a" + i)
                    .put("generation", "g" + i));
        }
        Path file = dir.resolve("eval_results.json");
        PreciseWikiQa.Metrics none = PreciseWikiQa.writeResults(file, "m", "j", samples,
                Map.of(0, "gibberish", 1, "more", 2, "{not json"), Map.of(), 0);
        assertThat(none.haluRate()).isNull();
        assertThat(none.refusalRate()).isNull();
        assertThat(none.correctRate()).isNull();
        assertThat(none.readable()).isZero();
        assertThat(none.summary()).startsWith("halu_rate n/a, refusal_rate n/a, correct_rate n/a (3 samples");
        assertThat(none.warning("j")).startsWith("WARNING: the verdicts of 3 of 3 samples could not be read")
                .contains("there are no metrics");
        JsonNode json = Jsonl.JSON.readTree(file.toFile());
        assertThat(json.get("halu_rate").isNull()).isTrue();
        assertThat(json.get("refusal_rate").isNull()).isTrue();
        assertThat(json.get("correct_rate").isNull()).isTrue();

        // Everyone abstained: refusal 1.0, but hallucination over no judged answer is still n/a, not 0.
        PreciseWikiQa.Metrics abstained = PreciseWikiQa.writeResults(file, "m", "j", samples,
                Map.of(0, "{\"is_abstaining\": true}", 1, "{\"is_abstaining\": true}", 2, "??"), Map.of(), 0);
        assertThat(abstained.haluRate()).isNull();
        assertThat(abstained.refusalRate()).isEqualTo(1.0);
        assertThat(abstained.summary()).startsWith("halu_rate n/a, refusal_rate 1.000, correct_rate 0.000");
        assertThat(abstained.warning("j")).as("1 of 3 unparsed is not most").isNull();

        // Two of three unparsed, one readable: loud, but there are metrics.
        PreciseWikiQa.Metrics most = PreciseWikiQa.writeResults(file, "m", "j", samples,
                Map.of(0, "{\"is_abstaining\": false}", 1, "??", 2, "{\"is_abstaining\": false}"), Map.of(0, "CORRECT", 2, "hmm"), 0);
        assertThat(most.warning("j")).contains("2 of 3").contains("rest on 1 samples only");
    }
}
