package dev.tether.server.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.server.ServerHandle;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OpenAI API gaps of issue 14 (item 3), over HTTP against the embedded engine serving {@code tiny}:
 * prompt arrays, echo, /v1/models/{id}, stream_options.include_usage, sampling ranges, response_format
 * through grammars, /tokenize and /detokenize, /metrics, and the clear 400s for what is not supported.
 * tiny's text is meaningless: assertions are on structure, token counts and grammar-forced shapes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EmbeddedApiTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path home;

    private TinyServer tiny;
    private ServerHandle server;
    private HttpClient http;

    @BeforeAll
    void start() throws Exception {
        tiny = TinyServer.start(home);
        server = tiny.server;
        http = tiny.http;
    }

    @AfterAll
    void stop() {
        tiny.close();
    }

    private HttpResponse<String> post(String path, Object body) throws Exception {
        return tiny.post(path, body instanceof String s ? s : JSON.writeValueAsString(body));
    }

    private HttpResponse<String> get(String path) throws Exception {
        return tiny.get(path);
    }

    private JsonNode postOk(String path, Object body) throws Exception {
        HttpResponse<String> response = post(path, body);
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        return JSON.readTree(response.body());
    }

    private void assertError(HttpResponse<String> response, int status, String says) throws Exception {
        assertThat(response.statusCode()).as(response.body()).isEqualTo(status);
        JsonNode error = JSON.readTree(response.body()).get("error");
        assertThat(error.get("message").asText()).contains(says);
        assertThat(error.get("type").asText()).isNotBlank();
    }

    private int tokenCount(String text) throws Exception {
        return postOk("/tokenize", Map.of("content", text)).get("tokens").size();
    }

    @Test
    void aPromptArrayGetsOneChoicePerPromptInOrder() throws Exception {
        List<String> prompts = List.of("alpha", "a much longer second prompt", "third");
        JsonNode body = postOk("/v1/completions", Map.of("model", "tiny", "prompt", prompts, "max_tokens", 3, "n", 2));
        JsonNode choices = body.get("choices");
        assertThat(choices).hasSize(6);
        for (int i = 0; i < 6; i++) {
            assertThat(choices.get(i).get("index").asInt()).isEqualTo(i);
            assertThat(choices.get(i).get("finish_reason").asText()).isEqualTo("length");
        }
        int promptTokens = 0;
        for (String p : prompts) {
            promptTokens += tokenCount(p);
        }
        assertThat(body.get("usage").get("prompt_tokens").asInt()).isEqualTo(promptTokens);
        assertThat(body.get("usage").get("completion_tokens").asInt()).isEqualTo(18);
        assertThat(body.get("usage").get("total_tokens").asInt()).isEqualTo(promptTokens + 18);
    }

    @Test
    void promptsMayBeTokenIds() throws Exception {
        JsonNode ids = postOk("/tokenize", Map.of("content", "Once upon a time")).get("tokens");
        List<Integer> tokens = new ArrayList<>();
        ids.forEach(t -> tokens.add(t.asInt()));
        JsonNode one = postOk("/v1/completions", Map.of("model", "tiny", "prompt", tokens, "max_tokens", 2, "temperature", 0));
        assertThat(one.get("usage").get("prompt_tokens").asInt()).isEqualTo(tokens.size());
        JsonNode asText = postOk("/v1/completions", Map.of("model", "tiny", "prompt", "Once upon a time", "max_tokens", 2,
                "temperature", 0));
        assertThat(one.get("choices").get(0).get("text").asText()).isEqualTo(asText.get("choices").get(0).get("text").asText());
        JsonNode two = postOk("/v1/completions", Map.of("model", "tiny", "prompt", List.of(tokens, tokens), "max_tokens", 1));
        assertThat(two.get("choices")).hasSize(2);
    }

    @Test
    void echoPutsThePromptBeforeTheCompletion() throws Exception {
        String prompt = "The tiny model says";
        Map<String, Object> request = Map.of("model", "tiny", "prompt", prompt, "max_tokens", 6, "temperature", 0);
        String plain = postOk("/v1/completions", request).get("choices").get(0).get("text").asText();
        Map<String, Object> echoed = new java.util.HashMap<>(request);
        echoed.put("echo", true);
        assertThat(postOk("/v1/completions", echoed).get("choices").get(0).get("text").asText()).isEqualTo(prompt + plain);
        // max_tokens 0 with echo (how lm-eval scores a prompt): the prompt alone, nothing generated.
        echoed.put("max_tokens", 0);
        JsonNode only = postOk("/v1/completions", echoed);
        assertThat(only.get("choices").get(0).get("text").asText()).isEqualTo(prompt);
        assertThat(only.get("usage").get("completion_tokens").asInt()).isZero();
        // Streamed, the prompt comes first.
        echoed.put("max_tokens", 3);
        echoed.put("stream", true);
        List<JsonNode> chunks = chunks(post("/v1/completions", echoed));
        assertThat(chunks.getFirst().get("choices").get(0).get("text").asText()).isEqualTo(prompt);
    }

    @Test
    void aModelIsFoundByIdAndAnUnknownOneIs404() throws Exception {
        HttpResponse<String> found = get("/v1/models/tiny");
        assertThat(found.statusCode()).isEqualTo(200);
        JsonNode model = JSON.readTree(found.body());
        assertThat(model.get("id").asText()).isEqualTo("tiny");
        assertThat(model.get("object").asText()).isEqualTo("model");
        HttpResponse<String> missing = get("/v1/models/gpt-9");
        assertError(missing, 404, "'gpt-9' is not served here");
        assertThat(JSON.readTree(missing.body()).get("error").get("code").asText()).isEqualTo("model_not_found");
    }

    private static List<JsonNode> chunks(HttpResponse<String> response) throws Exception {
        assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
        List<String> events = response.body().lines().filter(l -> l.startsWith("data: ")).map(l -> l.substring(6)).toList();
        assertThat(events.getLast()).isEqualTo("[DONE]");
        List<JsonNode> chunks = new ArrayList<>();
        for (String e : events.subList(0, events.size() - 1)) {
            chunks.add(JSON.readTree(e));
        }
        return chunks;
    }

    @Test
    void includeUsageAddsAFinalChunkWithEmptyChoicesAndTheUsage() throws Exception {
        for (boolean chat : List.of(false, true)) {
            Map<String, Object> request = new java.util.HashMap<>(chat
                    ? Map.of("model", "tiny", "messages", List.of(Map.of("role", "user", "content", "hi")))
                    : Map.of("model", "tiny", "prompt", "hi"));
            request.put("max_tokens", 4);
            request.put("stream", true);
            request.put("stream_options", Map.of("include_usage", true));
            List<JsonNode> chunks = chunks(post(chat ? "/v1/chat/completions" : "/v1/completions", request));
            JsonNode last = chunks.getLast();
            assertThat(last.get("choices")).isEmpty();
            assertThat(last.get("usage").get("completion_tokens").asInt()).isEqualTo(4);
            assertThat(last.get("usage").get("prompt_tokens").asInt()).isPositive();
            assertThat(chunks.subList(0, chunks.size() - 1)).allSatisfy(c -> assertThat(c.get("choices")).hasSize(1));

            request.remove("stream_options");
            assertThat(chunks(post(chat ? "/v1/chat/completions" : "/v1/completions", request)))
                    .as("without include_usage no chunk has empty choices").allSatisfy(c -> assertThat(c.get("choices")).hasSize(1));
        }
        assertError(post("/v1/completions", Map.of("model", "tiny", "prompt", "x", "stream_options", Map.of("include_usage", true))),
                400, "only allowed with stream: true");
    }

    @Test
    void samplingSettingsOutOfRangeAre400NeverClamped() throws Exception {
        record Case(String field, Object value, String says) {}
        for (Case c : List.of(new Case("temperature", 2.5, "'temperature' must be from 0 to 2, not 2.5"),
                new Case("temperature", -0.1, "'temperature' must be from 0 to 2"),
                new Case("top_p", 1.5, "'top_p' must be from 0 to 1"),
                new Case("presence_penalty", 3, "'presence_penalty' must be from -2 to 2"),
                new Case("temperature", "hot", "must be a number"))) {
            assertError(post("/v1/completions", Map.of("model", "tiny", "prompt", "x", c.field(), c.value())), 400, c.says());
            assertError(post("/v1/chat/completions", Map.of("model", "tiny", c.field(), c.value(),
                    "messages", List.of(Map.of("role", "user", "content", "x")))), 400, c.says());
        }
        for (double edge : new double[] {0, 2}) {
            postOk("/v1/completions", Map.of("model", "tiny", "prompt", "x", "max_tokens", 2, "temperature", edge));
        }
    }

    @Test
    void jsonSchemaForcesTheAnswersShape() throws Exception {
        Map<String, Object> schema = Map.of("type", "object",
                "properties", Map.of("verdict", Map.of("enum", List.of("correct", "wrong")), "score", Map.of("type", "integer")),
                "required", List.of("verdict", "score"), "additionalProperties", false);
        for (int seed = 1; seed <= 3; seed++) {
            JsonNode body = postOk("/v1/chat/completions", Map.of("model", "tiny", "max_tokens", 60, "seed", seed,
                    "temperature", 1.0, "messages", List.of(Map.of("role", "user", "content", "Judge this.")),
                    "response_format", Map.of("type", "json_schema", "json_schema", Map.of("name", "verdict", "schema", schema))));
            JsonNode choice = body.get("choices").get(0);
            assertThat(choice.get("finish_reason").asText()).as("the grammar ends the text").isEqualTo("stop");
            JsonNode answer = JSON.readTree(choice.get("message").get("content").asText());
            assertThat(answer.get("verdict").asText()).isIn("correct", "wrong");
            assertThat(answer.get("score").isIntegralNumber()).isTrue();
            assertThat(answer.size()).isEqualTo(2);
        }
    }

    @Test
    void jsonObjectGivesAJsonObject() throws Exception {
        JsonNode body = postOk("/v1/completions", Map.of("model", "tiny", "prompt", "JSON:", "max_tokens", 200,
                "temperature", 0, "response_format", Map.of("type", "json_object")));
        JsonNode choice = body.get("choices").get(0);
        String text = choice.get("text").asText();
        assertThat(choice.get("finish_reason").asText()).as(text).isEqualTo("stop");
        assertThat(JSON.readTree(text).isObject()).as(text).isTrue();
    }

    @Test
    void aSchemaLlamaCppCannotConvertIsA400AndTheEngineStaysUp() throws Exception {
        HttpResponse<String> bad = post("/v1/completions", Map.of("model", "tiny", "prompt", "x",
                "response_format", Map.of("type", "json_schema", "json_schema", Map.of("name", "x",
                        "schema", Map.of("type", "object", "properties", Map.of("a", Map.of("$ref", "#/nowhere")))))));
        assertError(bad, 400, "Error resolving ref #/nowhere");
        assertError(post("/v1/completions", Map.of("model", "tiny", "prompt", "x", "response_format", Map.of("type", "yaml"))),
                400, "'yaml' is not supported");
        postOk("/v1/completions", Map.of("model", "tiny", "prompt", "still here", "max_tokens", 2));
    }

    @Test
    void tokenizeAndDetokenizeRoundTrip() throws Exception {
        String text = "Hello, world: tokens!";
        JsonNode tokens = postOk("/tokenize", Map.of("content", text));
        assertThat(tokens.get("count").asInt()).isEqualTo(tokens.get("tokens").size()).isPositive();
        assertThat(postOk("/detokenize", Map.of("tokens", tokens.get("tokens"))).get("content").asText()).isEqualTo(text);
        JsonNode pieces = postOk("/tokenize", Map.of("content", text, "with_pieces", true)).get("tokens");
        StringBuilder joined = new StringBuilder();
        pieces.forEach(p -> joined.append(p.get("piece").asText()));
        assertThat(joined.toString()).isEqualTo(text);
        // The prompt of a completion counts exactly these tokens.
        assertThat(postOk("/v1/completions", Map.of("model", "tiny", "prompt", text, "max_tokens", 1))
                .get("usage").get("prompt_tokens").asInt()).isEqualTo(tokens.get("count").asInt());
        assertError(post("/detokenize", Map.of("tokens", List.of(1, 99_999_999))), 400, "token id 99999999 is not in");
        assertError(post("/tokenize", Map.of("text", "x")), 400, "'text' is not supported by /tokenize");
    }

    private static final Pattern SAMPLE = Pattern.compile("^(\\w+(?:\\{[^}]*})?) (\\d+)$", Pattern.MULTILINE);

    private Map<String, Long> metrics() throws Exception {
        HttpResponse<String> response = get("/metrics");
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("content-type").orElse("")).startsWith("text/plain");
        Map<String, Long> samples = new java.util.HashMap<>();
        Matcher m = SAMPLE.matcher(response.body());
        while (m.find()) {
            samples.put(m.group(1), Long.parseLong(m.group(2)));
        }
        return samples;
    }

    @Test
    void metricsCountRequestsAndTokensAndShowBusySlots() throws Exception {
        Map<String, Long> before = metrics();
        JsonNode body = postOk("/v1/completions", Map.of("model", "tiny", "prompt", List.of("one", "two two"), "max_tokens", 5));
        post("/v1/completions", Map.of("model", "tiny", "prompt", "x", "temperature", 9));
        Map<String, Long> after = metrics();
        String ok = "tether_requests_total{route=\"/v1/completions\",status=\"200\"}";
        String bad = "tether_requests_total{route=\"/v1/completions\",status=\"400\"}";
        assertThat(after.get(ok) - before.getOrDefault(ok, 0L)).isEqualTo(1);
        assertThat(after.get(bad) - before.getOrDefault(bad, 0L)).isEqualTo(1);
        assertThat(after.get("tether_prompt_tokens_total") - before.get("tether_prompt_tokens_total"))
                .isEqualTo(body.get("usage").get("prompt_tokens").asLong());
        assertThat(after.get("tether_completion_tokens_total") - before.get("tether_completion_tokens_total")).isEqualTo(10);
        assertThat(after.get("tether_generations_total") - before.get("tether_generations_total")).isEqualTo(2);
        assertThat(after.get("tether_slots_total")).isEqualTo(4);
        assertThat(after.get("tether_slots_busy")).isZero();

        // While a long stream is being generated, one slot is busy.
        HttpResponse<Stream<String>> stream = http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(Map.of("model", "tiny", "prompt", "go",
                        "max_tokens", 3000, "stream", true)))).build(), HttpResponse.BodyHandlers.ofLines());
        try (Stream<String> lines = stream.body()) {
            Iterator<String> it = lines.iterator();
            while (it.hasNext() && !it.next().startsWith("data: ")) {
                // until the first token arrives
            }
            assertThat(metrics().get("tether_slots_busy")).isEqualTo(1);
        }
    }

    private static List<Integer> ints(JsonNode array) {
        List<Integer> out = new ArrayList<>();
        array.forEach(t -> out.add(t.asInt()));
        return out;
    }

    @Test
    void greedyTextWithLogprobsIsTheEnginesOwnGreedyText() throws Exception {
        // The logprobs path computes logits itself (llama.cpp's C API through FFM): at temperature 0 it must pick
        // exactly the tokens the engine picks, or its logits are not the model's.
        for (String prompt : List.of("Once upon a time", "The capital of France is", "1, 2, 3,")) {
            Map<String, Object> request = Map.of("model", "tiny", "prompt", prompt, "max_tokens", 12, "temperature", 0);
            String plain = postOk("/v1/completions", request).get("choices").get(0).get("text").asText();
            Map<String, Object> scored = new java.util.HashMap<>(request);
            scored.put("logprobs", 3);
            JsonNode choice = postOk("/v1/completions", scored).get("choices").get(0);
            assertThat(choice.get("text").asText()).as(prompt).isEqualTo(plain);
            JsonNode logprobs = choice.get("logprobs");
            assertThat(logprobs.get("tokens")).hasSize(12);
            for (int i = 0; i < 12; i++) {
                double chosen = logprobs.get("token_logprobs").get(i).asDouble();
                JsonNode top = logprobs.get("top_logprobs").get(i);
                assertThat(chosen).isLessThanOrEqualTo(0);
                assertThat(top.size()).isBetween(1, 3);
                // Greedy: the chosen token is the most likely one.
                double best = Double.NEGATIVE_INFINITY;
                for (JsonNode v : top) {
                    best = Math.max(best, v.asDouble());
                }
                assertThat(chosen).isCloseTo(best, org.assertj.core.data.Offset.offset(1e-6));
            }
        }
    }

    @Test
    void stopStringsEndTheTextOnTheLogprobsPathAsOnTheEngines() throws Exception {
        Map<String, Object> request = new java.util.HashMap<>(Map.of("model", "tiny", "prompt", "Once upon a time",
                "max_tokens", 20, "temperature", 0));
        String plain = postOk("/v1/completions", request).get("choices").get(0).get("text").asText();
        String stop = plain.substring(6, 8);
        request.put("stop", List.of(stop));
        JsonNode engine = postOk("/v1/completions", request).get("choices").get(0);
        request.put("logprobs", 0);
        JsonNode scored = postOk("/v1/completions", request).get("choices").get(0);
        assertThat(engine.get("text").asText()).isEqualTo(plain.substring(0, plain.indexOf(stop)));
        assertThat(scored.get("text").asText()).isEqualTo(engine.get("text").asText());
        assertThat(scored.get("finish_reason").asText()).isEqualTo("stop");
        assertThat(engine.get("finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    void echoScoresThePromptTheWayLmEvalAsks() throws Exception {
        List<Integer> context = ints(postOk("/tokenize", Map.of("content", "The cat sat on the")).get("tokens"));
        // The greedy next token after the context, and its logprob, generated step by step...
        JsonNode next = postOk("/v1/completions", Map.of("model", "tiny", "prompt", context, "max_tokens", 1,
                "temperature", 0, "logprobs", 1)).get("choices").get(0).get("logprobs");
        String nextPiece = next.get("tokens").get(0).asText();
        double nextLogprob = next.get("token_logprobs").get(0).asDouble();
        int nextId = ints(postOk("/tokenize", Map.of("content", nextPiece)).get("tokens")).getFirst();
        // ...and the same token scored as the last token of a prompt (all positions in one batch), with echo.
        List<Integer> whole = new ArrayList<>(context);
        whole.add(nextId);
        JsonNode body = postOk("/v1/completions", Map.of("model", "tiny", "prompt", whole, "max_tokens", 1,
                "temperature", 0, "logprobs", 1, "echo", true));
        JsonNode logprobs = body.get("choices").get(0).get("logprobs");
        assertThat(logprobs.get("tokens")).hasSize(whole.size() + 1);
        assertThat(logprobs.get("token_logprobs").get(0).isNull()).as("nothing precedes the first token").isTrue();
        assertThat(logprobs.get("top_logprobs").get(0).isNull()).isTrue();
        assertThat(logprobs.get("token_logprobs").get(whole.size() - 1).asDouble())
                .isCloseTo(nextLogprob, org.assertj.core.data.Offset.offset(1e-3));
        for (int i = 1; i < whole.size(); i++) {
            assertThat(logprobs.get("token_logprobs").get(i).asDouble()).isLessThanOrEqualTo(0);
        }
        assertThat(logprobs.get("text_offset").get(0).asInt()).isZero();
        assertThat(body.get("usage").get("prompt_tokens").asInt()).isEqualTo(whole.size());
        // max_tokens 0 scores the prompt alone.
        JsonNode only = postOk("/v1/completions", Map.of("model", "tiny", "prompt", whole, "max_tokens", 0,
                "logprobs", 0, "echo", true));
        assertThat(only.get("choices").get(0).get("logprobs").get("tokens")).hasSize(whole.size());
        assertThat(only.get("usage").get("completion_tokens").asInt()).isZero();
    }

    @Test
    void chatLogprobsHaveOpenAisShape() throws Exception {
        JsonNode body = postOk("/v1/chat/completions", Map.of("model", "tiny", "max_tokens", 5, "seed", 3,
                "messages", List.of(Map.of("role", "user", "content", "hi")), "logprobs", true, "top_logprobs", 4, "n", 2));
        assertThat(body.get("choices")).hasSize(2);
        for (JsonNode choice : body.get("choices")) {
            JsonNode content = choice.get("logprobs").get("content");
            assertThat(content).hasSize(5);
            StringBuilder text = new StringBuilder();
            for (JsonNode t : content) {
                text.append(t.get("token").asText());
                assertThat(t.get("logprob").asDouble()).isLessThanOrEqualTo(0);
                assertThat(t.get("bytes").size()).isEqualTo(t.get("token").asText().getBytes(java.nio.charset.StandardCharsets.UTF_8).length);
                assertThat(t.get("top_logprobs")).hasSize(4);
                double sum = 0;
                double previous = 0;
                for (JsonNode a : t.get("top_logprobs")) {
                    assertThat(a.get("logprob").asDouble()).isLessThanOrEqualTo(previous);
                    previous = a.get("logprob").asDouble();
                    sum += Math.exp(previous);
                }
                assertThat(sum).isLessThanOrEqualTo(1.0001);
            }
            assertThat(choice.get("message").get("content").asText()).isEqualTo(text.toString());
        }
        assertThat(body.get("usage").get("completion_tokens").asInt()).isEqualTo(10);
        // The engine is still up (the binding's own logprobs aborted the whole process).
        assertThat(get("/health").statusCode()).isEqualTo(200);
    }

    @Test
    void whatIsNotSupportedIsAClear400() throws Exception {
        record Case(String path, Map<String, Object> body, String says) {}
        List<Map<String, String>> hi = List.of(Map.of("role", "user", "content", "hi"));
        List<Case> cases = List.of(
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", "x", "best_of", 3), "best_of is not supported"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", "x", "frobnicate", true),
                        "'frobnicate' is not supported by /v1/completions"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", "x", "logprobs", 21), "logprobs must be from 0 to 20"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", "x", "logprobs", 1, "stream", true),
                        "logprobs with stream: true are not supported"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", "x", "logprobs", 1,
                        "response_format", Map.of("type", "json_object")), "with logprobs, only"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", "x", "suffix", "y"), "suffix"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", List.of("a", "b"), "stream", true), "one prompt"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", List.of()), "not empty"),
                new Case("/v1/completions", Map.of("model", "tiny", "prompt", "x", "logit_bias", Map.of("999999", 5)),
                        "not in this model's vocabulary"),
                new Case("/v1/chat/completions", Map.of("model", "tiny", "messages", hi, "top_logprobs", 2),
                        "top_logprobs needs logprobs: true"),
                new Case("/v1/chat/completions", Map.of("model", "tiny", "messages", hi, "tools",
                        List.of(Map.of("type", "function", "function", Map.of("name", "f")))), "tools"),
                new Case("/v1/chat/completions", Map.of("model", "tiny", "messages", hi, "echo", true),
                        "'echo' is not supported by /v1/chat/completions"),
                new Case("/v1/embeddings", Map.of("model", "tiny", "input", "x"), "is not an embedding model"));
        for (Case c : cases) {
            assertError(post(c.path(), c.body()), 400, c.says());
        }
        // logit_bias is honoured: +100 on 'z' (token 122 of tiny's byte-level vocabulary) makes every token a 'z'.
        assertThat(postOk("/v1/completions", Map.of("model", "tiny", "prompt", "x", "max_tokens", 4, "temperature", 1.0,
                "logit_bias", Map.of("122", 100))).get("choices").get(0).get("text").asText()).isEqualTo("zzzz");
    }
}
