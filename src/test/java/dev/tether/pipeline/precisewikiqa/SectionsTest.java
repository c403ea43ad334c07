package dev.tether.pipeline.precisewikiqa;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class SectionsTest {

    private static String paragraph(int words, String word) {
        return (word + " ").repeat(words).strip() + ".";
    }

    @Test
    void paragraphsArePackedIntoSectionsOfTwoToFiveHundredTokens() {
        String doc = String.join("\n\n", paragraph(90, "alpha"), paragraph(90, "beta"), paragraph(90, "gamma"),
                paragraph(90, "delta"), paragraph(90, "epsilon"), paragraph(90, "zeta"), paragraph(90, "eta"),
                paragraph(90, "theta"), paragraph(40, "references"));
        List<String> sections = Sections.split(doc);
        assertThat(sections).isNotEmpty();
        for (String s : sections) {
            assertThat(Sections.tokens(s)).isBetween(Sections.MIN_TOKENS, Sections.MAX_TOKENS);
        }
        assertThat(String.join(" ", sections)).doesNotContain("references");   // the last section is dropped
    }

    @Test
    void aVeryLongParagraphIsCutAtSentences() {
        String sentence = paragraph(30, "word");
        String doc = (sentence + " ").repeat(40).strip();
        List<String> sections = Sections.split(doc);
        assertThat(sections).allSatisfy(s -> assertThat(Sections.tokens(s)).isLessThanOrEqualTo(Sections.MAX_TOKENS));
        assertThat(sections.size()).isGreaterThan(1);
    }

    @Test
    void aShortDocumentIsOneSection() {
        assertThat(Sections.split("Just a few words here.")).containsExactly("Just a few words here.");
    }
}
