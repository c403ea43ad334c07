package dev.tether.pipeline.mixedentities;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class NameMixerTest {
    @Test
    void speciesNamesTakeAnEpithetAndAnotherGenusOfTheFamilyAndAreNeverReal() throws Exception {
        List<String> lines = List.of("Felidae\tPanthera leo", "Felidae\tFelis catus", "Felidae\tLynx lynx", "Canidae\tCanis lupus",
                "Canidae\tVulpes vulpes");
        List<String> made = NameMixer.mix("animal", lines, 6, new SplittableRandom(3), "test");
        assertThat(made).hasSize(6).doesNotHaveDuplicates().allSatisfy(name -> {
            String[] words = name.split(" ");
            assertThat(words).hasSize(2);
            assertThat(lines.stream().map(l -> l.split("\t")[1])).doesNotContain(name);
            boolean cat = List.of("leo", "catus", "lynx").contains(words[1]);
            assertThat(cat ? List.of("Panthera", "Felis", "Lynx") : List.of("Canis", "Vulpes"))
                    .as("the genus comes from the epithet's own family: %s", name).contains(words[0]);
        });
        assertThat(NameMixer.mix("animal", lines, 6, new SplittableRandom(3), "test")).as("the same seed, the same names")
                .isEqualTo(made);
    }

    @Test
    void medicineNamesMixWordsOfNamesOfTheSameLengthAsTheOriginalCleansThem() throws Exception {
        List<String> lines = List.of("Foo 500 Tablet", "Bar Syrup (Sugar Free)", "Baz Cream", "Qux, Quux Gel", "Alpha Beta Drops");
        List<String> made = NameMixer.mix("medicine", lines, 6, new SplittableRandom(1), "test");
        assertThat(made).hasSize(6).allSatisfy(name -> {
            assertThat(name).isLowerCase().doesNotContain("500").doesNotContain("qux").doesNotContain("sugar");
            assertThat(List.of("foo tablet", "bar syrup", "baz cream", "alpha beta drops")).doesNotContain(name);
        });
        assertThat(made).allSatisfy(name -> assertThat(name.split(" ")).hasSize(2));   // the one 3-word name has no mix
    }

    @Test
    void theJudgesVerdictIsReadAsTheOriginalReadsIt() {
        assertThat(MixedEntities.believes("{\"does_believe\": true}")).contains(true);
        assertThat(MixedEntities.believes("Answer: { \"does_believe\" : false } because")).contains(false);
        assertThat(MixedEntities.believes("{\"does_believe\": false, \"why\": \"typo\"}\nmore")).contains(false);
        assertThat(MixedEntities.believes("yes, it exists")).isEmpty();
        assertThat(MixedEntities.believes(null)).isEmpty();
    }
}
