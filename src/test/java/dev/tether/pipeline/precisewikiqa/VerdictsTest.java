package dev.tether.pipeline.precisewikiqa;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class VerdictsTest {

    @Test
    void abstentionIsReadFromJsonAnywhereInTheReply() {
        assertThat(Verdicts.abstention("{\"is_abstaining\": true}")).contains(true);
        assertThat(Verdicts.abstention("Sure! ```json\n{\"is_abstaining\": false}\n```")).contains(false);
        assertThat(Verdicts.abstention("{\"is_abstaining\": \"True\"}")).contains(true);
        assertThat(Verdicts.abstention("{oops} then {\"is_abstaining\": false}")).contains(false);
        assertThat(Verdicts.abstention("yes")).isEmpty();
        assertThat(Verdicts.abstention("{\"abstain\": true}")).isEmpty();
        assertThat(Verdicts.abstention(null)).isEmpty();
    }

    @Test
    void hallucinationVerdictIsTheFirstWord() {
        assertThat(Verdicts.hallucination("CORRECT")).contains(Verdicts.Hallucination.CORRECT);
        assertThat(Verdicts.hallucination(" incorrect. The gold answer says")).contains(Verdicts.Hallucination.INCORRECT);
        assertThat(Verdicts.hallucination("**Unverifiable**")).contains(Verdicts.Hallucination.UNVERIFIABLE);
        assertThat(Verdicts.hallucination("I think it is correct")).isEmpty();
        assertThat(Verdicts.hallucination("")).isEmpty();
    }

    @Test
    void answerabilityKeepsShortAnswersOnly() {
        assertThat(Verdicts.answer(" 1889 ")).isEqualTo(Optional.of("1889"));
        assertThat(Verdicts.answer("Unanswerable")).isEmpty();
        assertThat(Verdicts.answer("The answer is unanswerable from this text")).isEmpty();
        assertThat(Verdicts.answer("one two three four five six seven eight nine ten eleven")).isEmpty();
        assertThat(Verdicts.answer("")).isEmpty();
    }
}
