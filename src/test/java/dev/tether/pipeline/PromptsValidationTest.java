package dev.tether.pipeline;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class PromptsValidationTest {

    @TempDir
    Path dir;

    @Test
    void goodLinesCount() throws Exception {
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, "{\"prompt\":\"a\"}\n\n{\"id\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"b\"}],\"max_tokens\":5}\n");
        assertThat(PromptsTask.validate(input)).isEqualTo(2);
    }

    static Stream<Arguments> badLines() {
        return Stream.of(
                Arguments.of("{\"prompt\":\"a\"}\nnot json", ":2: not valid JSON"),
                Arguments.of("[1,2]", ":1: expected a JSON object"),
                Arguments.of("{\"text\":\"a\"}", ":1: no \"prompt\" or \"messages\""),
                Arguments.of("{\"prompt\":5}", ":1: \"prompt\" must be a string"),
                Arguments.of("{\"prompt\":\"a\",\"messages\":[]}", ":1: both"),
                Arguments.of("{\"messages\":[{\"role\":\"user\"}]}", ":1: each message needs"),
                Arguments.of("{\"prompt\":\"a\",\"max_tokens\":\"9\"}", ":1: \"max_tokens\" must be an integer"),
                Arguments.of("{\"prompt\":\"a\",\"id\":[1]}", ":1: \"id\" must be"),
                Arguments.of("{\"prompt\":\"a\",\"id\":1}\n{\"prompt\":\"b\",\"id\":1}", "same \"id\""),
                Arguments.of("{\"prompt\":\"a\",\"id\":\"x\"}\n{\"prompt\":\"b\",\"id\":\"y\"}\n{\"prompt\":\"c\",\"id\":\"x\"}",
                        ":3: the same \"id\" \"x\" as line 1"),
                Arguments.of("{\"prompt\":\"a\"}\n{bad\n{bad", ":2: not valid JSON"));
    }

    @ParameterizedTest
    @MethodSource("badLines")
    void badLinesNameFileLineAndProblem(String content, String expected) throws Exception {
        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, content);
        assertThatThrownBy(() -> PromptsTask.validate(input)).isInstanceOf(InputException.class)
                .hasMessageContaining(expected);
    }

    @Test
    void emptyAndMissingFilesAreInputErrors() throws Exception {
        Path empty = Files.writeString(dir.resolve("empty.jsonl"), "\n\n");
        assertThatThrownBy(() -> PromptsTask.validate(empty)).hasMessageContaining("has no prompts");
        assertThatThrownBy(() -> PromptsTask.validate(dir.resolve("nope.jsonl"))).hasMessageContaining("not found");
    }
}
