package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Splitting a server command like a shell would (without ever running one) and filling its placeholders. */
class ArgvTemplateTest {
    private static final Map<String, String> VALUES = Map.of("model", "org/Model-7B", "port", "8123", "host", "0.0.0.0");

    private static List<String> split(String line) {
        return ArgvTemplate.parse(line).words();
    }

    @Test
    void whitespaceSeparatesWords() {
        assertThat(split("  vllm serve\tm   --port 8000 \n")).containsExactly("vllm", "serve", "m", "--port", "8000");
    }

    @Test
    void singleQuotesAreLiteral() {
        assertThat(split("echo 'two words' 'back\\slash' 'say \"hi\"'"))
                .containsExactly("echo", "two words", "back\\slash", "say \"hi\"");
    }

    @Test
    void doubleQuotesAllowEscapedQuoteAndBackslashOnly() {
        assertThat(split("run \"a \\\"quoted\\\" word\" \"c:\\\\dir\" \"keep \\n as is\""))
                .containsExactly("run", "a \"quoted\" word", "c:\\dir", "keep \\n as is");
    }

    @Test
    void aBackslashOutsideQuotesEscapesOneCharacter() {
        assertThat(split("ls a\\ b c\\'d")).containsExactly("ls", "a b", "c'd");
    }

    @Test
    void quotedPartsJoinTheWordAroundThem() {
        assertThat(split("--name=pre'fix '\"ed\"x")).containsExactly("--name=prefix edx");
    }

    @Test
    void anEmptyQuotedWordIsKept() {
        assertThat(split("prog '' \"\" end")).containsExactly("prog", "", "", "end");
    }

    @Test
    void nothingAShellWouldExpandIsExpanded() {
        assertThat(split("echo $HOME * ~ `id` $(id) a|b c;d > out"))
                .containsExactly("echo", "$HOME", "*", "~", "`id`", "$(id)", "a|b", "c;d", ">", "out");
    }

    @Test
    void unbalancedQuotesAreRefused() {
        assertThatThrownBy(() -> split("echo 'open")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unbalanced '");
        assertThatThrownBy(() -> split("echo \"open")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unbalanced \"");
    }

    @Test
    void anEmptyCommandIsRefused() {
        assertThatThrownBy(() -> split("   ")).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("empty");
    }

    @Test
    void placeholdersAreFilledInsideAndAcrossWords() {
        ArgvTemplate template = ArgvTemplate.parse("vllm serve {model} --host {host} --port {port} --url=http://{host}:{port}/v1");
        assertThat(template.render(VALUES)).containsExactly("vllm", "serve", "org/Model-7B", "--host", "0.0.0.0",
                "--port", "8123", "--url=http://0.0.0.0:8123/v1");
        assertThat(template.mentions("model")).isTrue();
        assertThat(ArgvTemplate.parse("server --port {port}").mentions("model")).isFalse();
    }

    @Test
    void aValueIsInsertedLiterallyAndNeverSplit() {
        ArgvTemplate template = ArgvTemplate.parse("prog -m {model}");
        assertThat(template.render(Map.of("model", "/models/my model $1 \\g<0>.gguf")))
                .containsExactly("prog", "-m", "/models/my model $1 \\g<0>.gguf");
    }

    @Test
    void anUnknownPlaceholderIsRefusedByName() {
        assertThatThrownBy(() -> ArgvTemplate.parse("prog --port {port} --x {nope}"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("{nope}")
                .hasMessageContaining("{model} {port} {host}");
        assertThatThrownBy(() -> new ArgvTemplate(List.of("prog", "{Port}"))).hasMessageContaining("{Port}");
    }

    @Test
    void jsonArgumentsAreNotMistakenForPlaceholders() {
        // vLLM and SGLang take JSON on the command line (--override-generation-config, --hf-overrides, ...).
        ArgvTemplate template = ArgvTemplate.parse(
                "vllm serve {model} --port {port} --hf-overrides '{\"rope_scaling\": {\"type\": \"yarn\"}}' --empty '{}'");
        assertThat(template.render(VALUES)).containsExactly("vllm", "serve", "org/Model-7B", "--port", "8123",
                "--hf-overrides", "{\"rope_scaling\": {\"type\": \"yarn\"}}", "--empty", "{}");
    }

    @Test
    void aListTemplateIsTakenWordForWord() {
        ArgvTemplate template = new ArgvTemplate(List.of("prog", "two words", "'quoted'", "--port={port}"));
        assertThat(template.render(VALUES)).containsExactly("prog", "two words", "'quoted'", "--port=8123");
    }
}
