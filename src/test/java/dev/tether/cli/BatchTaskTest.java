package dev.tether.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.fixtures.FlakyOpenAiServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code run --task batch}: OpenAI Batch API lines in, vllm run-batch's output lines out. Against a scripted
 * {@link FlakyOpenAiServer} (through --url: its answers are known, so every response body is checked), and once on the
 * embedded tiny model (the whole path with a server tether starts and stops).
 */
class BatchTaskTest {
    private static final Map<String, String> NO_KEY = Map.of("OPENAI_API_KEY", "");

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path input() throws Exception {
        return Files.writeString(dir.resolve("batch.jsonl"), String.join("\n",
                "{\"custom_id\":\"r1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-x\","
                        + "\"messages\":[{\"role\":\"user\",\"content\":\"say alpha\"}],\"max_tokens\":7}}",
                "{\"custom_id\":\"r2\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"say beta\"}}",
                "{\"custom_id\":\"r3\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{"
                        + "\"messages\":[{\"role\":\"user\",\"content\":\"say gamma\"}]}}",
                "{\"custom_id\":\"r4\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{"
                        + "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"say delta\"}]}}",
                ""));
    }

    private Path answers(String... lines) throws Exception {
        return Files.writeString(Files.createTempFile(dir, "answers", ".tsv"), String.join("\n", lines) + "\n");
    }

    private TetherCli.Result batch(FlakyOpenAiServer server, Path input, Path output, String... more) throws Exception {
        List<String> args = new java.util.ArrayList<>(List.of("run", "--task", "batch", "--model", "m", "--url", server.baseUrl(),
                "--input", input.toString(), "--output", output.toString(), "--retries", "0"));
        args.addAll(List.of(more));
        return TetherCli.run(tethers.home(), NO_KEY, args.toArray(String[]::new));
    }

    @Test
    void eachRequestGetsItsResponseLineInInputOrderWithTheRunsModel() throws Exception {
        Path answers = answers("say alpha\talpha", "say beta\tbeta", "say gamma\tgamma", "say delta\tdelta");
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--answers", answers.toString())) {
            Path output = dir.resolve("out.jsonl");
            TetherCli.Result r = batch(server, input(), output);
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
            assertThat(r.out()).contains("batch: 4 records (0 resumed from an earlier run), 0 failed");
            List<JsonNode> lines = TetherHomes.jsonLines(output);
            assertThat(lines).extracting(l -> l.get("custom_id").asText()).containsExactly("r1", "r2", "r3", "r4");
            List<String> texts = List.of("alpha", "beta", "gamma", "delta");
            for (int i = 0; i < 4; i++) {
                JsonNode line = lines.get(i);
                assertThat(line.get("id").asText()).startsWith("tether-");
                assertThat(line.get("error").isNull()).isTrue();
                JsonNode response = line.get("response");
                assertThat(response.get("status_code").asInt()).isEqualTo(200);
                assertThat(response.get("request_id").asText()).isNotBlank();
                JsonNode body = response.get("body");
                assertThat(body.get("model").asText()).as("the run's --model replaces the body's").isEqualTo("m");
                JsonNode choice = body.get("choices").get(0);
                boolean chat = i != 1;
                assertThat(body.get("object").asText()).isEqualTo(chat ? "chat.completion" : "text_completion");
                assertThat(chat ? choice.get("message").get("content").asText() : choice.get("text").asText()).isEqualTo(texts.get(i));
                assertThat(choice.get("finish_reason").asText()).isEqualTo("stop");
                assertThat(body.get("usage").get("total_tokens").asInt())
                        .isEqualTo(FlakyOpenAiServer.PROMPT_TOKENS + FlakyOpenAiServer.COMPLETION_TOKENS);
            }
        }
    }

    @Test
    void theBodysFieldsAreSentWithTheRunsModel() throws Exception {
        Path input = Files.writeString(dir.resolve("one.jsonl"), "{\"custom_id\":\"only\",\"method\":\"POST\","
                + "\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                + "\"max_tokens\":7,\"top_p\":0.5,\"logit_bias\":{\"42\":-1}}}\n");
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0")) {
            TetherCli.Result r = batch(server, input, dir.resolve("out.jsonl"));
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
            JsonNode sent = new com.fasterxml.jackson.databind.ObjectMapper().readTree(server.lastBody());
            assertThat(sent.get("model").asText()).isEqualTo("m");
            assertThat(sent.get("max_tokens").asInt()).isEqualTo(7);
            assertThat(sent.get("top_p").asDouble()).isEqualTo(0.5);
            assertThat(sent.get("logit_bias").get("42").asInt()).isEqualTo(-1);
            assertThat(sent.get("temperature").asDouble()).as("--temperature when the body has none").isEqualTo(0.0);
        }
    }

    @Test
    void aRequestThatFailsAfterItsRetriesIsAnErrorLineAndARerunRetriesOnlyIt() throws Exception {
        Path output = dir.resolve("out.jsonl");
        Path input = input();
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--answers", answers("say gamma\tHTTP 500").toString())) {
            TetherCli.Result r = batch(server, input, output);
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isEqualTo(1);
            assertThat(r.err().strip().lines()).hasSize(1).first().asString().contains("1 record failed (batch: 1 of 4 in " + output);
            List<JsonNode> lines = TetherHomes.jsonLines(output);
            assertThat(lines).hasSize(4);
            JsonNode failed = lines.get(2);
            assertThat(failed.get("custom_id").asText()).isEqualTo("r3");
            assertThat(failed.get("response").isNull()).isTrue();
            assertThat(failed.get("error").get("code").asText()).isEqualTo("server_error");
            assertThat(failed.get("error").get("message").asText()).contains("500");
        }
        List<String> idsBefore = TetherHomes.jsonLines(output).stream().map(l -> l.get("id").asText()).toList();
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0")) {
            TetherCli.Result again = batch(server, input, output);
            assertThat(again.exitCode()).as("stdout:\n%s\nstderr:\n%s", again.out(), again.err()).isZero();
            assertThat(again.out()).contains("batch: 4 records (3 resumed from an earlier run), 0 failed");
            assertThat(server.requests()).as("only the failed request is sent again").isEqualTo(1);
            List<JsonNode> lines = TetherHomes.jsonLines(output);
            assertThat(lines).extracting(l -> l.get("custom_id").asText()).containsExactly("r1", "r2", "r3", "r4");
            assertThat(lines.get(2).get("error").isNull()).isTrue();
            List<String> idsAfter = lines.stream().map(l -> l.get("id").asText()).toList();
            assertThat(idsAfter).as("the lines kept are the same lines").containsSubsequence(idsBefore.get(0), idsBefore.get(1), idsBefore.get(3));

            byte[] done = Files.readAllBytes(output);
            TetherCli.Result third = batch(server, input, output);
            assertThat(third.exitCode()).isZero();
            assertThat(third.out()).contains("batch: all 4 requests already in " + output + "; nothing to do");
            assertThat(server.requests()).isEqualTo(1);
            assertThat(Files.readAllBytes(output)).as("a complete output is not written again").isEqualTo(done);
        }
    }

    @Test
    void aDuplicateCustomIdOrABadLineIsAnInputErrorNamingTheLineAndNothingIsSent() throws Exception {
        Path duplicate = Files.writeString(dir.resolve("dup.jsonl"), String.join("\n",
                "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}",
                "{\"custom_id\":\"b\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"y\"}}",
                "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"z\"}}", ""));
        Path badUrl = Files.writeString(dir.resolve("url.jsonl"),
                "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{\"input\":\"x\"}}\n");
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0")) {
            Path output = dir.resolve("out.jsonl");
            TetherCli.Result dup = batch(server, duplicate, output);
            assertThat(dup.exitCode()).isEqualTo(2);
            assertThat(dup.err().strip()).isEqualTo("tether: " + duplicate + ":3: the same \"custom_id\" \"a\" as line 1; "
                    + "custom_ids must be unique (they key the resume)");
            TetherCli.Result url = batch(server, badUrl, output);
            assertThat(url.exitCode()).isEqualTo(2);
            assertThat(url.err().strip().lines()).hasSize(1).first().asString()
                    .startsWith("tether: " + badUrl + ":1: \"url\" must be \"/v1/chat/completions\" or \"/v1/completions\"")
                    .contains("not \"/v1/embeddings\"");
            assertThat(server.requests()).isZero();
            assertThat(output).doesNotExist();
        }
    }

    /** Complete lines in a file that may end in a torn one. */
    private static long completeLines(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file).chars().filter(c -> c == '\n').count() : 0;
        } catch (java.io.IOException e) {
            return 0;   // being written: the next poll reads it
        }
    }

    @Test
    void aRunKilledWithSigkillMidBatchResumesWithEveryCustomIdExactlyOnce() throws Exception {
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < 24; i++) {
            lines.append("{\"custom_id\":\"c").append(i).append("\",\"method\":\"POST\",\"url\":\"/v1/completions\","
                    + "\"body\":{\"prompt\":\"item ").append(i).append("\"}}\n");
        }
        Path input = Files.writeString(dir.resolve("many.jsonl"), lines);
        Path output = dir.resolve("out.jsonl");
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--delay-ms", "150")) {
            BackgroundTether run = tethers.start(dir, "run", "--task", "batch", "--model", "m", "--url", server.baseUrl(),
                    "--input", input.toString(), "--output", output.toString(), "--concurrency", "2");
            // Some records in, then kill mid-run.
            assertThat(dev.tether.proc.Poll.until(() -> completeLines(output) >= 5 || !run.process.isAlive(),
                    java.time.Duration.ofMinutes(2), java.time.Duration.ofMillis(20))).as("5 records within 2 minutes\n%s%s",
                    run.out(), run.err()).isTrue();
            assertThat(run.process.isAlive()).as("the run ended before it was killed:\n%s%s", run.out(), run.err()).isTrue();
            run.process.destroyForcibly();   // SIGKILL
            run.process.waitFor();
            long kept = completeLines(output);
            assertThat(kept).isLessThan(24);
            int before = server.requests();
            TetherCli.Result again = batch(server, input, output);
            assertThat(again.exitCode()).as("stdout:\n%s\nstderr:\n%s", again.out(), again.err()).isZero();
            assertThat(again.out()).contains("batch: 24 records (" + kept + " resumed from an earlier run), 0 failed");
            assertThat(server.requests() - before).as("only what was not written is sent again").isEqualTo(24 - kept);
            List<JsonNode> out = TetherHomes.jsonLines(output);
            assertThat(out).extracting(l -> l.get("custom_id").asText()).doesNotHaveDuplicates().hasSize(24)
                    .containsExactlyElementsOf(java.util.stream.IntStream.range(0, 24).mapToObj(i -> "c" + i).toList());
            assertThat(out).allSatisfy(l -> assertThat(l.get("error").isNull()).isTrue());
        }
    }

    @Test
    void onTheTinyModelEveryRequestIsAnsweredAndARerunWritesNothing() throws Exception {
        Path output = dir.resolve("out").resolve("batch/tiny/results.jsonl");
        String[] args = {"run", "--task", "batch", "--model", "tiny", "--input", input().toString(), "--output-dir",
                dir.resolve("out").toString(), "--max-tokens", "8", "--port", "auto"};
        TetherCli.Result r = TetherCli.run(tethers.home(), args);
        assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
        assertThat(r.out()).contains("Ready:").contains("batch: 4 records (0 resumed");
        List<JsonNode> lines = TetherHomes.jsonLines(output);
        assertThat(lines).extracting(l -> l.get("custom_id").asText()).containsExactly("r1", "r2", "r3", "r4");
        assertThat(lines).allSatisfy(l -> {
            assertThat(l.get("error").isNull()).isTrue();
            assertThat(l.get("response").get("body").get("model").asText()).isEqualTo("tiny");
            assertThat(l.get("response").get("body").get("usage").get("completion_tokens").asInt()).isBetween(1, 8);
        });
        byte[] done = Files.readAllBytes(output);
        TetherCli.Result again = TetherCli.run(tethers.home(), args);
        assertThat(again.exitCode()).as("stdout:\n%s\nstderr:\n%s", again.out(), again.err()).isZero();
        assertThat(again.out()).contains("nothing to do (no server started)").doesNotContain("Starting server");
        assertThat(Files.readAllBytes(output)).isEqualTo(done);
        TetherHomes.assertNoProcessesOf(tethers.home());
    }
}
