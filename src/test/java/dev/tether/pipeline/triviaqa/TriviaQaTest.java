package dev.tether.pipeline.triviaqa;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class TriviaQaTest {
    @Test
    void anAnswerIsCorrectWhenAGoldAliasAppearsInItIgnoringCase() {
        assertThat(TriviaQa.matches("I believe it is PARIS.", List.of("Paris", "Paris, France"))).isTrue();
        assertThat(TriviaQa.matches("Lyon", List.of("Paris"))).isFalse();
        assertThat(TriviaQa.matches("", List.of("Paris"))).isFalse();
    }

    @Test
    void theOriginalsAnswerColumnIsPythonsStrOfTheAliasList() {
        assertThat(TriviaQa.pythonList(List.of("Paris", "Paris, France"))).isEqualTo("['Paris', 'Paris, France']");
        assertThat(TriviaQa.pythonList(List.of("Rock 'n' roll"))).isEqualTo("[\"Rock 'n' roll\"]");
    }

    @Test
    void theBundledSampleIsReadAndCutToN() throws Exception {
        List<TriviaQa.Question> all = TriviaQa.read(null, 1000);
        assertThat(all).hasSizeGreaterThanOrEqualTo(10).allSatisfy(q -> assertThat(q.aliases()).isNotEmpty());
        assertThat(TriviaQa.read(null, 3)).hasSize(3).extracting(TriviaQa.Question::id).containsExactly(
                all.get(0).id(), all.get(1).id(), all.get(2).id());
        assertThat(all.getFirst().prompt()).startsWith("Q: ").endsWith("\nA:");
    }
}
