package dev.tether.server.embedded;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.function.Supplier;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.Callback;

/**
 * The OpenAI-compatible API over an {@link Engine}: {@code GET /health} (503 while the model loads),
 * {@code GET /v1/models}, {@code GET /v1/models/{id}}, {@code POST /v1/completions} and
 * {@code POST /v1/chat/completions} (each also as a server-sent-event stream ending {@code data: [DONE]}),
 * {@code POST /v1/embeddings} (for a GGUF that declares a pooling type), llama-server's {@code POST /tokenize} and {@code /detokenize}, and
 * {@code GET /metrics} (Prometheus). Handlers block (virtual threads).
 *
 * <p>A request field this engine does not honour is a 400 naming it, never silently ignored: a client
 * that asks for {@code best_of} or tools must not get an answer that only looks like one.
 */
final class OpenAiHandler extends Handler.Abstract {
    private static final int DEFAULT_MAX_TOKENS_COMPLETION = 16;   // OpenAI's and vLLM's default
    private static final int MAX_N = 8;
    private static final int MAX_PROMPTS = 64;

    /** Fields each endpoint honours. "user", "metadata" and "store" change nothing about the answer. */
    private static final Set<String> COMMON = Set.of("model", "max_tokens", "temperature", "top_p", "n", "stream",
            "stream_options", "stop", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
            "response_format", "top_k", "min_p", "user", "metadata", "store");
    private static final Set<String> COMPLETION_ONLY = Set.of("prompt", "echo", "best_of", "suffix");
    private static final Set<String> CHAT_ONLY = Set.of("messages", "max_completion_tokens", "top_logprobs", "tools",
            "tool_choice", "parallel_tool_calls");

    private final ObjectMapper json = new ObjectMapper();
    private final Supplier<Engine> engine;
    private final Grammars grammars;
    private final Metrics metrics = new Metrics();

    /** @param engine null while the model is loading */
    OpenAiHandler(Supplier<Engine> engine, Grammars grammars) {
        this.engine = engine;
        this.grammars = grammars;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        String path = Request.getPathInContext(request);
        String method = request.getMethod();
        String route = path.startsWith("/v1/models/") ? "/v1/models/{id}" : path;
        try {
            switch (route) {
                case "/health" -> health(response, callback);
                case "/metrics" -> {
                    requireMethod(method, "GET");
                    response.setStatus(200);
                    response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
                    metrics.request(route, 200);   // counted before rendering, so this request is in its own answer
                    Content.Sink.write(response, true, metrics.render(engine), callback);
                    return true;
                }
                case "/v1/models" -> {
                    requireMethod(method, "GET");
                    models(response, callback);
                }
                case "/v1/models/{id}" -> {
                    requireMethod(method, "GET");
                    model(java.net.URLDecoder.decode(path.substring("/v1/models/".length()), StandardCharsets.UTF_8),
                            response, callback);
                }
                case "/v1/completions" -> {
                    requireMethod(method, "POST");
                    generate(request, response, callback, false);
                }
                case "/v1/chat/completions" -> {
                    requireMethod(method, "POST");
                    generate(request, response, callback, true);
                }
                case "/v1/embeddings" -> {
                    requireMethod(method, "POST");
                    embeddings(request, response, callback);
                }
                case "/tokenize" -> {
                    requireMethod(method, "POST");
                    tokenize(request, response, callback);
                }
                case "/detokenize" -> {
                    requireMethod(method, "POST");
                    detokenize(request, response, callback);
                }
                default -> throw new ApiError(404, "invalid_request_error", "not_found", "no route " + method + " " + path);
            }
        } catch (ApiError e) {
            sendError(response, callback, e);
        } catch (Exception e) {
            sendError(response, callback, new ApiError(500, "server_error", null, e.toString()));
        }
        metrics.request(route, response.getStatus());
        return true;
    }

    private static void requireMethod(String method, String wanted) {
        if (!method.equals(wanted)) {
            throw new ApiError(405, "invalid_request_error", "method_not_allowed", "use " + wanted);
        }
    }

    private Engine loaded() {
        Engine e = engine.get();
        if (e == null) {
            throw new ApiError(503, "server_error", "loading", "the model is still loading");
        }
        return e;
    }

    private void health(Response response, Callback callback) {
        boolean ready = engine.get() != null;
        sendJson(response, callback, ready ? 200 : 503,
                json.createObjectNode().put("status", ready ? "ok" : "loading"));
    }

    private ObjectNode modelCard(Engine e) {
        return json.createObjectNode().put("id", e.servedName).put("object", "model").put("created", 0)
                .put("owned_by", "tether").put("max_model_len", e.slotContext);
    }

    private void models(Response response, Callback callback) {
        Engine e = loaded();
        ObjectNode body = json.createObjectNode().put("object", "list");
        body.putArray("data").add(modelCard(e));
        sendJson(response, callback, 200, body);
    }

    private void model(String id, Response response, Callback callback) {
        Engine e = loaded();
        if (!id.equals(e.servedName)) {
            throw ApiError.notFound("model '" + id + "' is not served here; this server serves '" + e.servedName + "'");
        }
        sendJson(response, callback, 200, modelCard(e));
    }

    private void embeddings(Request request, Response response, Callback callback) throws IOException {
        Engine e = loaded();
        JsonNode body = parseBody(request);
        allowOnly(body, Set.of("model", "input", "encoding_format", "dimensions", "user"), "/v1/embeddings");
        requireServed(e, text(body, "model", true));
        String format = body.hasNonNull("encoding_format") ? text(body, "encoding_format", true) : "float";
        if (!format.equals("float") && !format.equals("base64")) {
            throw ApiError.badRequest("encoding_format must be float or base64, not '" + format + "'");
        }
        List<int[]> inputs = embeddingInputs(e, body.get("input"));
        if (body.hasNonNull("dimensions")) {
            throw ApiError.badRequest("dimensions is not supported: the model's embeddings have their own size (leave it out)");
        }
        ObjectNode out = json.createObjectNode().put("object", "list");
        ArrayNode data = out.putArray("data");
        int tokens = 0;
        for (int i = 0; i < inputs.size(); i++) {
            float[] vector = e.embed(inputs.get(i));
            tokens += inputs.get(i).length;
            ObjectNode item = data.addObject().put("object", "embedding").put("index", i);
            if (format.equals("base64")) {   // what the openai npm client asks by default: little-endian float32
                ByteBuffer bytes = ByteBuffer.allocate(vector.length * Float.BYTES).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                for (float v : vector) {
                    bytes.putFloat(v);
                }
                item.put("embedding", java.util.Base64.getEncoder().encodeToString(bytes.array()));
            } else {
                ArrayNode values = item.putArray("embedding");
                for (float v : vector) {
                    values.add(v);
                }
            }
        }
        out.put("model", e.servedName);
        out.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        metrics.generated(tokens, 0);
        sendJson(response, callback, 200, out);
    }

    /** input: a string, an array of strings, token ids, or an array of token-id arrays (as OpenAI takes it). */
    private static List<int[]> embeddingInputs(Engine e, JsonNode input) {
        if (input == null || input.isNull()) {
            throw ApiError.badRequest("'input' is required: a string or an array of strings (or token ids)");
        }
        if (input.isTextual()) {
            return List.of(nonEmpty(e.tokenize(input.asText()), "input"));
        }
        if (!input.isArray() || input.isEmpty()) {
            throw ApiError.badRequest("'input' must be a string, an array of strings, or token ids, and not empty");
        }
        if (input.get(0).isIntegralNumber()) {
            int[] ids = tokenIds(input, "input");
            e.detokenize(ids);   // checks every id against the vocabulary
            return List.of(ids);
        }
        if (input.size() > MAX_PROMPTS * 32) {
            throw ApiError.badRequest("at most " + MAX_PROMPTS * 32 + " inputs per request, not " + input.size());
        }
        List<int[]> inputs = new ArrayList<>();
        for (int i = 0; i < input.size(); i++) {
            JsonNode item = input.get(i);
            if (item.isTextual()) {
                inputs.add(nonEmpty(e.tokenize(item.asText()), "input[" + i + "]"));
            } else if (item.isArray() && !item.isEmpty()) {
                int[] ids = tokenIds(item, "input[" + i + "]");
                e.detokenize(ids);
                inputs.add(ids);
            } else {
                throw ApiError.badRequest("input[" + i + "] must be a string or a non-empty array of token ids");
            }
        }
        return inputs;
    }

    private static int[] nonEmpty(int[] tokens, String field) {
        if (tokens.length == 0) {
            throw ApiError.badRequest(field + " is empty: there is nothing to embed");
        }
        return tokens;
    }

    private void tokenize(Request request, Response response, Callback callback) throws IOException {
        Engine e = loaded();
        JsonNode body = parseBody(request);
        allowOnly(body, Set.of("content", "prompt", "model", "add_special", "with_pieces"), "/tokenize");
        if (body.has("model")) {
            requireServed(e, text(body, "model", true));
        }
        String content = body.has("content") ? text(body, "content", true) : text(body, "prompt", false);
        if (content == null) {
            throw ApiError.badRequest("'content' is required: the text to tokenize");
        }
        if (body.path("add_special").asBoolean(false)) {
            throw ApiError.badRequest("add_special: true is not supported: tokens are counted as the engine reads prompts, "
                    + "without added special tokens");
        }
        int[] tokens = e.tokenize(content);
        ObjectNode out = json.createObjectNode();
        ArrayNode list = out.putArray("tokens");
        boolean pieces = body.path("with_pieces").asBoolean(false);
        for (int t : tokens) {
            if (pieces) {
                list.addObject().put("id", t).put("piece", e.detokenize(new int[] {t}));
            } else {
                list.add(t);
            }
        }
        out.put("count", tokens.length).put("max_model_len", e.slotContext);
        sendJson(response, callback, 200, out);
    }

    private void detokenize(Request request, Response response, Callback callback) throws IOException {
        Engine e = loaded();
        JsonNode body = parseBody(request);
        allowOnly(body, Set.of("tokens", "model"), "/detokenize");
        if (body.has("model")) {
            requireServed(e, text(body, "model", true));
        }
        int[] tokens = tokenIds(body.get("tokens"), "tokens");
        sendJson(response, callback, 200, json.createObjectNode().put("content", e.detokenize(tokens))
                .put("prompt", e.detokenize(tokens)));
    }

    private static void requireServed(Engine e, String model) {
        if (!model.equals(e.servedName)) {
            throw ApiError.notFound("model '" + model + "' is not served here; this server serves '" + e.servedName + "'");
        }
    }

    /** A field outside {@code allowed} is a 400 naming it: never silently ignored. */
    private static void allowOnly(JsonNode body, Set<String> allowed, String endpoint) {
        for (String field : (Iterable<String>) body::fieldNames) {
            if (!allowed.contains(field)) {
                throw ApiError.badRequest("'" + field + "' is not supported by " + endpoint
                        + " of tether's embedded engine (it takes: " + String.join(", ", new TreeSet<>(allowed)) + ")");
            }
        }
    }

    private void generate(Request request, Response response, Callback callback, boolean chat) throws Exception {
        Engine e = loaded();
        JsonNode body = parseBody(request);
        Set<String> allowed = new HashSet<>(COMMON);
        allowed.addAll(chat ? CHAT_ONLY : COMPLETION_ONLY);
        String endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
        allowOnly(body, allowed, endpoint);
        requireServed(e, text(body, "model", true));
        refuseUnsupported(body, chat);
        List<Prompt> prompts = chat ? List.of(new Prompt(e.chatPrompt(messages(body)), null)) : prompts(e, body);
        boolean echo = !chat && body.path("echo").asBoolean(false);
        int maxTokens = integer(body, chat ? "max_completion_tokens" : "max_tokens",
                integer(body, "max_tokens", chat ? Integer.MAX_VALUE : DEFAULT_MAX_TOKENS_COMPLETION));
        if (maxTokens < (echo ? 0 : 1)) {
            throw ApiError.badRequest("max_tokens must be at least 1" + (chat ? "" : " (or 0 with echo: true)"));
        }
        int n = integer(body, "n", 1);
        if (n < 1 || n > MAX_N) {
            throw ApiError.badRequest("n must be from 1 to " + MAX_N);
        }
        if (body.has("best_of") && integer(body, "best_of", 1) != n) {
            throw ApiError.badRequest("best_of is not supported (generating several and returning the best): "
                    + "leave it out, or equal to n");
        }
        Engine.Request generation = new Engine.Request(prompts.getFirst().text(), maxTokens,
                (float) range(body, "temperature", 1.0, 0, 2), (float) range(body, "top_p", 1.0, 0, 1), stops(body),
                body.has("seed") ? integer(body, "seed", 0) : null, sampling(e, body));
        boolean stream = body.path("stream").asBoolean(false);
        JsonNode streamOptions = body.get("stream_options");
        if (streamOptions != null && !streamOptions.isNull()) {
            if (!stream) {
                throw ApiError.badRequest("stream_options is only allowed with stream: true");
            }
            if (!streamOptions.isObject()) {
                throw ApiError.badRequest("stream_options must be an object such as {\"include_usage\": true}");
            }
            allowOnly(streamOptions, Set.of("include_usage"), "stream_options of " + endpoint);
        }
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
        long created = System.currentTimeMillis() / 1000;
        Integer topLogprobs = logprobsWanted(body, chat);
        if (topLogprobs != null) {
            if (stream) {
                throw ApiError.badRequest("logprobs with stream: true are not supported; leave out stream to get them");
            }
            if (!generation.sampling().equals(Engine.Sampling.NONE)) {
                throw ApiError.badRequest("with logprobs, only temperature, top_p, seed, stop, n, echo and max_tokens apply: "
                        + "leave out response_format, logit_bias, penalties, top_k and min_p");
            }
            withLogprobs(e, prompts, generation, n, echo, chat, topLogprobs, id, created, response, callback);
            return;
        }
        if (stream) {
            if (n != 1 || prompts.size() != 1) {
                throw ApiError.badRequest("stream: true takes one prompt and n = 1 (send several requests to stream several)");
            }
            boolean includeUsage = streamOptions != null && streamOptions.path("include_usage").asBoolean(false);
            stream(e, generation, chat, echo, includeUsage, id, created, response, callback);
            return;
        }
        ObjectNode out = header(chat ? "chat.completion" : "text_completion", id, created, e.servedName);
        ArrayNode choices = out.putArray("choices");
        int promptTokens = 0;
        int completionTokens = 0;
        // OpenAI's order: prompt i's choices are indices i*n .. i*n+n-1.
        for (Prompt p : prompts) {
            String prompt = p.text();
            Engine.Request forPrompt = generation.withPrompt(prompt);
            for (int j = 0; j < n; j++) {
                Engine.Request each = forPrompt.seed() == null || j == 0 ? forPrompt : forPrompt.withSeed(forPrompt.seed() + j);
                Engine.Result r = e.generate(each, token -> { });
                metrics.generated(j == 0 ? r.promptTokens() : 0, r.completionTokens());
                if (j == 0) {
                    promptTokens += r.promptTokens();
                }
                completionTokens += r.completionTokens();
                ObjectNode choice = choices.addObject().put("index", choices.size() - 1);
                if (chat) {
                    choice.putObject("message").put("role", "assistant").put("content", r.text());
                } else {
                    choice.put("text", echo ? prompt + r.text() : r.text());
                }
                choice.putNull("logprobs");
                choice.put("finish_reason", r.finishReason());
            }
        }
        usage(out, promptTokens, completionTokens);
        sendJson(response, callback, 200, out);
    }

    private static final int MAX_TOP_LOGPROBS = 20;

    /** How many alternatives per token a request wants with its logprobs, or null for no logprobs. */
    private static Integer logprobsWanted(JsonNode body, boolean chat) {
        if (chat) {
            boolean wanted = body.path("logprobs").asBoolean(false);
            if (body.hasNonNull("top_logprobs") && !wanted) {
                throw ApiError.badRequest("top_logprobs needs logprobs: true");
            }
            if (!wanted) {
                return null;
            }
            int top = integer(body, "top_logprobs", 0);
            if (top < 0 || top > MAX_TOP_LOGPROBS) {
                throw ApiError.badRequest("top_logprobs must be from 0 to " + MAX_TOP_LOGPROBS);
            }
            return top;
        }
        if (!body.hasNonNull("logprobs")) {
            return null;
        }
        int top = integer(body, "logprobs", 0);   // even 0 asks for the chosen tokens' logprobs
        if (top < 0 || top > MAX_TOP_LOGPROBS) {
            throw ApiError.badRequest("logprobs must be from 0 to " + MAX_TOP_LOGPROBS);
        }
        return top;
    }

    /** The logprobs path (see {@link Logprobs}): OpenAI's completion and chat shapes of token logprobs. */
    private void withLogprobs(Engine e, List<Prompt> prompts, Engine.Request generation, int n, boolean echo, boolean chat,
                              int top, String id, long created, Response response, Callback callback) {
        Logprobs scorer = e.logprobs();
        ObjectNode out = header(chat ? "chat.completion" : "text_completion", id, created, e.servedName);
        ArrayNode choices = out.putArray("choices");
        int promptTokens = 0;
        int completionTokens = 0;
        for (Prompt p : prompts) {
            int[] tokens = p.tokens(e);
            for (int j = 0; j < n; j++) {
                Integer seed = generation.seed() == null ? null : generation.seed() + j;
                Logprobs.Scored r = scorer.run(tokens, echo, new Logprobs.Settings(generation.maxTokens(),
                        generation.temperature(), generation.topP(), seed, generation.stop(), top));
                metrics.generated(j == 0 ? r.promptTokens() : 0, r.completion().size());
                if (j == 0) {
                    promptTokens += r.promptTokens();
                }
                completionTokens += r.completion().size();
                ObjectNode choice = choices.addObject().put("index", choices.size() - 1);
                if (chat) {
                    choice.putObject("message").put("role", "assistant").put("content", r.text());
                    ObjectNode logprobs = choice.putObject("logprobs");
                    ArrayNode content = logprobs.putArray("content");
                    for (Logprobs.Token t : r.completion()) {
                        ObjectNode entry = chatToken(content.addObject(), t.piece(), t.logprob());
                        ArrayNode alternatives = entry.putArray("top_logprobs");
                        t.top().forEach(a -> chatToken(alternatives.addObject(), a.piece(), a.logprob()));
                    }
                    logprobs.putNull("refusal");
                } else {
                    choice.put("text", echo ? p.text() + r.text() : r.text());
                    ObjectNode logprobs = choice.putObject("logprobs");
                    ArrayNode pieces = logprobs.putArray("tokens");
                    ArrayNode values = logprobs.putArray("token_logprobs");
                    ArrayNode tops = logprobs.putArray("top_logprobs");
                    ArrayNode offsets = logprobs.putArray("text_offset");
                    int offset = 0;
                    List<Logprobs.Token> all = new ArrayList<>(r.prompt());
                    all.addAll(r.completion());
                    for (Logprobs.Token t : all) {
                        pieces.add(t.piece());
                        offsets.add(offset);
                        offset += t.piece().length();
                        if (t.logprob() == null) {
                            values.addNull();
                            tops.addNull();
                        } else {
                            values.add(t.logprob());
                            ObjectNode alternatives = tops.addObject();
                            // Two tokens with the same text (a byte and a merge) keep the likelier one, as a JSON key must be unique.
                            t.top().forEach(a -> {
                                if (!alternatives.has(a.piece())) {
                                    alternatives.put(a.piece(), a.logprob());
                                }
                            });
                        }
                    }
                }
                choice.put("finish_reason", r.finishReason());
            }
        }
        usage(out, promptTokens, completionTokens);
        sendJson(response, callback, 200, out);
    }

    private static ObjectNode chatToken(ObjectNode node, String piece, float logprob) {
        node.put("token", piece).put("logprob", logprob);
        ArrayNode bytes = node.putArray("bytes");
        for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
            bytes.add(b & 0xff);
        }
        return node;
    }

    /** Fields that are known but not honoured here: a clear 400 each, with why. */
    private static void refuseUnsupported(JsonNode body, boolean chat) {
        if (body.hasNonNull("suffix") && !body.get("suffix").asText().isEmpty()) {
            throw ApiError.badRequest("suffix (fill-in-the-middle) is not supported by tether's embedded engine");
        }
        JsonNode tools = body.get("tools");
        if (tools != null && !tools.isNull() && !(tools.isArray() && tools.isEmpty())) {
            throw ApiError.badRequest("tools (function calling) are not supported by tether's embedded engine");
        }
        JsonNode toolChoice = body.get("tool_choice");
        if (toolChoice != null && !toolChoice.isNull() && !toolChoice.asText().equals("none")) {
            throw ApiError.badRequest("tool_choice is not supported by tether's embedded engine (no tools)");
        }
        if (body.path("store").asBoolean(false)) {
            throw ApiError.badRequest("store: true is not supported: tether's embedded engine keeps no completions");
        }
    }

    /** The settings beyond temperature and top_p: penalties, logit_bias, top_k, min_p, and a grammar for response_format. */
    private Engine.Sampling sampling(Engine e, JsonNode body) {
        Float presence = body.hasNonNull("presence_penalty") ? (float) range(body, "presence_penalty", 0, -2, 2) : null;
        Float frequency = body.hasNonNull("frequency_penalty") ? (float) range(body, "frequency_penalty", 0, -2, 2) : null;
        Map<Integer, Float> bias = new HashMap<>();
        JsonNode biasNode = body.get("logit_bias");
        if (biasNode != null && !biasNode.isNull()) {
            if (!biasNode.isObject()) {
                throw ApiError.badRequest("logit_bias must be an object of token id to bias, e.g. {\"50256\": -100}");
            }
            for (var entry : biasNode.properties()) {
                int token;
                try {
                    token = Integer.parseInt(entry.getKey());
                } catch (NumberFormatException x) {
                    throw ApiError.badRequest("logit_bias keys are token ids, not '" + entry.getKey() + "'");
                }
                if (token < 0 || (e.vocabulary > 0 && token >= e.vocabulary)) {
                    throw ApiError.badRequest("logit_bias: token id " + token + " is not in this model's vocabulary (0.."
                            + (e.vocabulary - 1) + ")");
                }
                if (!entry.getValue().isNumber() || Math.abs(entry.getValue().asDouble()) > 100) {
                    throw ApiError.badRequest("logit_bias values must be numbers from -100 to 100");
                }
                bias.put(token, (float) entry.getValue().asDouble());
            }
        }
        Integer topK = body.hasNonNull("top_k") ? integer(body, "top_k", 0) : null;
        if (topK != null && topK < 0) {
            throw ApiError.badRequest("top_k must be 0 (off) or more");
        }
        Float minP = body.hasNonNull("min_p") ? (float) range(body, "min_p", 0, 0, 1) : null;
        return new Engine.Sampling(grammar(body.get("response_format")), presence, frequency, bias, topK, minP);
    }

    /** response_format: text (nothing), json_object, or json_schema, each through a llama.cpp grammar. */
    private String grammar(JsonNode format) {
        if (format == null || format.isNull()) {
            return null;
        }
        if (!format.isObject() || !format.path("type").isTextual()) {
            throw ApiError.badRequest("response_format must be an object with a type: text, json_object or json_schema");
        }
        return switch (format.get("type").asText()) {
            case "text" -> null;
            case "json_object" -> format.path("schema").isObject()   // llama-server's form: a schema with json_object
                    ? grammars.forSchema(format.get("schema").toString()) : grammars.forSchema(Grammars.OBJECT_SCHEMA);
            case "json_schema" -> {
                JsonNode schema = format.path("json_schema").path("schema");
                if (!schema.isObject()) {
                    throw ApiError.badRequest("response_format json_schema needs json_schema.schema: a JSON schema object");
                }
                yield grammars.forSchema(schema.toString());
            }
            default -> throw ApiError.badRequest("response_format type '" + format.get("type").asText()
                    + "' is not supported (use text, json_object or json_schema)");
        };
    }

    private void stream(Engine e, Engine.Request generation, boolean chat, boolean echo, boolean includeUsage, String id,
                        long created, Response response, Callback callback) {
        response.setStatus(200);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
        String object = chat ? "chat.completion.chunk" : "text_completion";
        try {
            if (chat) {
                ObjectNode first = header(object, id, created, e.servedName);
                ObjectNode choice = first.putArray("choices").addObject().put("index", 0);
                choice.putObject("delta").put("role", "assistant").put("content", "");
                choice.putNull("finish_reason");
                event(response, first);
            } else if (echo && !generation.prompt().isEmpty()) {
                ObjectNode first = header(object, id, created, e.servedName);
                first.putArray("choices").addObject().put("index", 0).put("text", generation.prompt()).putNull("finish_reason");
                event(response, first);
            }
            Engine.Result result = e.generate(generation, token -> {
                ObjectNode chunk = header(object, id, created, e.servedName);
                ObjectNode choice = chunk.putArray("choices").addObject().put("index", 0);
                if (chat) {
                    choice.putObject("delta").put("content", token);
                } else {
                    choice.put("text", token);
                }
                choice.putNull("finish_reason");
                event(response, chunk);
            });
            metrics.generated(result.promptTokens(), result.completionTokens());
            ObjectNode last = header(object, id, created, e.servedName);
            ObjectNode choice = last.putArray("choices").addObject().put("index", 0);
            if (chat) {
                choice.putObject("delta");
            } else {
                choice.put("text", "");
            }
            choice.put("finish_reason", result.finishReason());
            usage(last, result.promptTokens(), result.completionTokens());
            event(response, last);
            if (includeUsage) {
                // OpenAI's stream_options.include_usage: one more chunk, with empty choices and the usage.
                ObjectNode usageChunk = header(object, id, created, e.servedName);
                usageChunk.putArray("choices");
                usage(usageChunk, result.promptTokens(), result.completionTokens());
                event(response, usageChunk);
            }
            response.write(true, ByteBuffer.wrap("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8)), callback);
        } catch (ApiError error) {
            // Headers are not sent until the first event: a request error still gets its status.
            if (!response.isCommitted()) {
                sendError(response, callback, error);
            } else {
                callback.failed(error);
            }
        } catch (IOException gone) {
            callback.failed(gone);   // the client left mid-stream; the engine cancelled its generation
        }
    }

    private void event(Response response, ObjectNode chunk) throws IOException {
        byte[] bytes = ("data: " + json.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8);
        try (Blocker.Callback blocker = Blocker.callback()) {
            response.write(false, ByteBuffer.wrap(bytes), blocker);
            blocker.block();
        }
    }

    private ObjectNode header(String object, String id, long created, String model) {
        return json.createObjectNode().put("id", id).put("object", object).put("created", created).put("model", model);
    }

    private static void usage(ObjectNode out, int prompt, int completion) {
        out.putObject("usage").put("prompt_tokens", prompt).put("completion_tokens", completion)
                .put("total_tokens", prompt + completion);
    }

    private JsonNode parseBody(Request request) throws IOException {
        String text = Content.Source.asString(request, StandardCharsets.UTF_8);
        try {
            JsonNode node = json.readTree(text);
            if (node == null || !node.isObject()) {
                throw ApiError.badRequest("the request body must be a JSON object");
            }
            return node;
        } catch (JsonProcessingException e) {
            throw ApiError.badRequest("the request body is not valid JSON: " + e.getOriginalMessage());
        }
    }

    private static String text(JsonNode body, String field, boolean required) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) {
            if (required) {
                throw ApiError.badRequest("'" + field + "' is required");
            }
            return null;
        }
        if (!node.isTextual()) {
            throw ApiError.badRequest("'" + field + "' must be a string");
        }
        return node.asText();
    }

    /**
     * The completion prompts: a string, an array of strings (one choice per prompt, as lm-eval batches), an
     * array of token ids, or an array of such arrays (token ids are turned back into text, which the engine
     * reads again).
     */
    /** A completion prompt: its text, and its token ids when the client sent ids (kept as sent for logprobs). */
    private record Prompt(String text, int[] ids) {
        int[] tokens(Engine e) {
            return ids != null ? ids : e.tokenize(text);
        }
    }

    private static List<Prompt> prompts(Engine e, JsonNode body) {
        JsonNode node = body.get("prompt");
        if (node == null || node.isNull()) {
            throw ApiError.badRequest("'prompt' is required");
        }
        if (node.isTextual()) {
            return List.of(new Prompt(node.asText(), null));
        }
        if (!node.isArray() || node.isEmpty()) {
            throw ApiError.badRequest("'prompt' must be a string, an array of strings, or token ids (an array of integers, "
                    + "or an array of such arrays), and not empty");
        }
        if (node.get(0).isIntegralNumber()) {
            int[] ids = tokenIds(node, "prompt");
            return List.of(new Prompt(e.detokenize(ids), ids));
        }
        if (node.size() > MAX_PROMPTS) {
            throw ApiError.badRequest("at most " + MAX_PROMPTS + " prompts per request, not " + node.size());
        }
        List<Prompt> prompts = new ArrayList<>();
        for (int i = 0; i < node.size(); i++) {
            JsonNode p = node.get(i);
            if (p.isTextual()) {
                prompts.add(new Prompt(p.asText(), null));
            } else if (p.isArray() && !p.isEmpty()) {
                int[] ids = tokenIds(p, "prompt[" + i + "]");
                prompts.add(new Prompt(e.detokenize(ids), ids));
            } else {
                throw ApiError.badRequest("prompt[" + i + "] must be a string or a non-empty array of token ids");
            }
        }
        return prompts;
    }

    private static int[] tokenIds(JsonNode node, String field) {
        if (node == null || !node.isArray()) {
            throw ApiError.badRequest("'" + field + "' must be an array of token ids");
        }
        int[] ids = new int[node.size()];
        for (int i = 0; i < ids.length; i++) {
            if (!node.get(i).isIntegralNumber()) {
                throw ApiError.badRequest(field + "[" + i + "] must be a token id (an integer)");
            }
            ids[i] = node.get(i).asInt();
        }
        return ids;
    }

    private static List<Engine.Message> messages(JsonNode body) {
        JsonNode node = body.get("messages");
        if (node == null || !node.isArray() || node.isEmpty()) {
            throw ApiError.badRequest("'messages' is required: a non-empty array of {role, content}");
        }
        List<Engine.Message> messages = new ArrayList<>();
        for (JsonNode m : node) {
            String role = m.path("role").asText(null);
            JsonNode content = m.get("content");
            if (role == null || content == null) {
                throw ApiError.badRequest("each message needs 'role' and 'content'");
            }
            String text;
            if (content.isTextual()) {
                text = content.asText();
            } else if (content.isArray()) {   // [{type: text, text: ...}, ...]
                StringBuilder joined = new StringBuilder();
                content.forEach(part -> joined.append(part.path("text").asText("")));
                text = joined.toString();
            } else {
                throw ApiError.badRequest("message content must be a string or an array of text parts");
            }
            messages.add(new Engine.Message(role, text));
        }
        return messages;
    }

    private static List<String> stops(JsonNode body) {
        JsonNode node = body.get("stop");
        if (node == null || node.isNull()) {
            return List.of();
        }
        if (node.isTextual()) {
            return List.of(node.asText());
        }
        if (node.isArray()) {
            List<String> stops = new ArrayList<>();
            node.forEach(s -> stops.add(s.asText()));
            return stops;
        }
        throw ApiError.badRequest("'stop' must be a string or an array of strings");
    }

    private static int integer(JsonNode body, String field, int fallback) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isIntegralNumber()) {
            throw ApiError.badRequest("'" + field + "' must be an integer");
        }
        return node.asInt();
    }

    /** A number that must lie in [min, max] (temperature 0..2, top_p 0..1, ...): outside it is a 400, never clamped. */
    private static double range(JsonNode body, String field, double fallback, double min, double max) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isNumber()) {
            throw ApiError.badRequest("'" + field + "' must be a number");
        }
        double value = node.asDouble();
        if (!(value >= min && value <= max)) {
            throw ApiError.badRequest("'" + field + "' must be from " + fmt(min) + " to " + fmt(max) + ", not " + node.asText());
        }
        return value;
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? String.valueOf((long) d) : String.valueOf(d);
    }

    private void sendJson(Response response, Callback callback, int status, JsonNode body) {
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        try {
            Content.Sink.write(response, true, json.writeValueAsString(body), callback);
        } catch (JsonProcessingException e) {
            callback.failed(e);
        }
    }

    private void sendError(Response response, Callback callback, ApiError error) {
        ObjectNode body = json.createObjectNode();
        ObjectNode inner = body.putObject("error").put("message", error.getMessage()).put("type", error.type);
        if (error.code != null) {
            inner.put("code", error.code);
        } else {
            inner.putNull("code");
        }
        sendJson(response, callback, error.status, body);
    }
}
