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
import java.util.List;
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
 * {@code GET /v1/models}, {@code POST /v1/completions} and {@code POST /v1/chat/completions}, each
 * also as a server-sent-event stream ending {@code data: [DONE]}. Handlers block (virtual threads).
 */
final class OpenAiHandler extends Handler.Abstract {
    private static final int DEFAULT_MAX_TOKENS_COMPLETION = 16;   // OpenAI's and vLLM's default
    private static final int MAX_N = 8;

    private final ObjectMapper json = new ObjectMapper();
    private final Supplier<Engine> engine;

    /** @param engine null while the model is loading */
    OpenAiHandler(Supplier<Engine> engine) {
        this.engine = engine;
    }

    @Override
    public boolean handle(Request request, Response response, Callback callback) {
        String path = Request.getPathInContext(request);
        String method = request.getMethod();
        try {
            switch (path) {
                case "/health" -> health(response, callback);
                case "/v1/models" -> {
                    requireMethod(method, "GET");
                    models(response, callback);
                }
                case "/v1/completions" -> {
                    requireMethod(method, "POST");
                    generate(request, response, callback, false);
                }
                case "/v1/chat/completions" -> {
                    requireMethod(method, "POST");
                    generate(request, response, callback, true);
                }
                default -> throw new ApiError(404, "invalid_request_error", "not_found", "no route " + method + " " + path);
            }
        } catch (ApiError e) {
            sendError(response, callback, e);
        } catch (Exception e) {
            sendError(response, callback, new ApiError(500, "server_error", null, e.toString()));
        }
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

    private void models(Response response, Callback callback) {
        Engine e = loaded();
        ObjectNode body = json.createObjectNode().put("object", "list");
        body.putArray("data").addObject().put("id", e.servedName).put("object", "model")
                .put("created", 0).put("owned_by", "tether");
        sendJson(response, callback, 200, body);
    }

    private void generate(Request request, Response response, Callback callback, boolean chat) throws Exception {
        Engine e = loaded();
        JsonNode body = parseBody(request);
        String model = text(body, "model", true);
        if (!model.equals(e.servedName)) {
            throw ApiError.notFound("model '" + model + "' is not served here; this server serves '" + e.servedName + "'");
        }
        String prompt = chat ? e.chatPrompt(messages(body)) : prompt(body);
        int maxTokens = integer(body, chat ? "max_completion_tokens" : "max_tokens",
                integer(body, "max_tokens", chat ? Integer.MAX_VALUE : DEFAULT_MAX_TOKENS_COMPLETION));
        if (maxTokens < 1) {
            throw ApiError.badRequest("max_tokens must be at least 1");
        }
        int n = integer(body, "n", 1);
        if (n < 1 || n > MAX_N) {
            throw ApiError.badRequest("n must be from 1 to " + MAX_N);
        }
        boolean wantsLogprobs = chat ? body.path("logprobs").asBoolean(false) || body.has("top_logprobs")
                : integer(body, "logprobs", 0) > 0;
        if (wantsLogprobs) {
            // de.kherud:llama 4.2.0 aborts the whole process (a GGML_ASSERT) when asked for token probabilities.
            throw ApiError.badRequest("logprobs are not supported by tether's embedded engine");
        }
        Engine.Request generation = new Engine.Request(prompt, maxTokens, (float) number(body, "temperature", 1.0),
                (float) number(body, "top_p", 1.0), stops(body), body.has("seed") ? integer(body, "seed", 0) : null);
        boolean stream = body.path("stream").asBoolean(false);
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
        long created = System.currentTimeMillis() / 1000;
        if (stream) {
            if (n != 1) {
                throw ApiError.badRequest("n > 1 is not supported with stream: true");
            }
            stream(e, generation, chat, id, created, response, callback);
            return;
        }
        List<Engine.Result> results = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Engine.Request each = generation.seed() == null || i == 0 ? generation
                    : new Engine.Request(prompt, maxTokens, generation.temperature(), generation.topP(), generation.stop(),
                    generation.seed() + i);
            results.add(e.generate(each, token -> { }));
        }
        ObjectNode out = header(chat ? "chat.completion" : "text_completion", id, created, e.servedName);
        ArrayNode choices = out.putArray("choices");
        int completionTokens = 0;
        for (int i = 0; i < results.size(); i++) {
            Engine.Result r = results.get(i);
            completionTokens += r.completionTokens();
            ObjectNode choice = choices.addObject().put("index", i);
            if (chat) {
                choice.putObject("message").put("role", "assistant").put("content", r.text());
            } else {
                choice.put("text", r.text());
            }
            choice.putNull("logprobs");
            choice.put("finish_reason", r.finishReason());
        }
        usage(out, results.getFirst().promptTokens(), completionTokens);
        sendJson(response, callback, 200, out);
    }

    private void stream(Engine e, Engine.Request generation, boolean chat, String id, long created,
                        Response response, Callback callback) {
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

    private static String prompt(JsonNode body) {
        JsonNode node = body.get("prompt");
        if (node == null || node.isNull()) {
            throw ApiError.badRequest("'prompt' is required");
        }
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.isArray() && node.size() == 1 && node.get(0).isTextual()) {
            return node.get(0).asText();
        }
        throw ApiError.badRequest("'prompt' must be a string (or an array of one string)");
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

    private static double number(JsonNode body, String field, double fallback) {
        JsonNode node = body.get(field);
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (!node.isNumber()) {
            throw ApiError.badRequest("'" + field + "' must be a number");
        }
        return node.asDouble();
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
