package dev.tether.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;

/**
 * The OpenAI wire format, both ways: request bodies, completion answers (whole or as stream chunks)
 * and error bodies. Lenient where servers differ (vLLM, llama.cpp, tether's engine), strict where a
 * wrong answer would otherwise pass as a generation.
 */
final class Wire {
    static final ObjectMapper JSON = new ObjectMapper();

    /** What one successful attempt produced. */
    record Answer(String text, String finishReason, int promptTokens, int completionTokens) {}

    private Wire() {}

    /** {@code base} + /v1 (unless it already ends so) + {@code path}. */
    static String endpoint(String base, String path) {
        String b = base.strip();
        while (b.endsWith("/")) {
            b = b.substring(0, b.length() - 1);
        }
        return (b.endsWith("/v1") ? b : b + "/v1") + path;
    }

    static byte[] requestBody(CompletionRequest r, boolean stream) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", r.model());
        if (r.isChat()) {
            ArrayNode messages = body.putArray("messages");
            for (CompletionRequest.Message m : r.messages()) {
                messages.addObject().put("role", m.role()).put("content", m.content());
            }
        } else {
            body.put("prompt", r.prompt());
        }
        if (r.maxTokens() != null) {
            body.put("max_tokens", r.maxTokens());
        }
        if (r.temperature() != null) {
            body.put("temperature", r.temperature());
        }
        if (r.topP() != null) {
            body.put("top_p", r.topP());
        }
        if (!r.stop().isEmpty()) {
            ArrayNode stop = body.putArray("stop");
            r.stop().forEach(stop::add);
        }
        if (r.seed() != null) {
            body.put("seed", r.seed());
        }
        for (Map.Entry<String, Object> e : r.extra().entrySet()) {
            body.set(e.getKey(), JSON.valueToTree(e.getValue()));
        }
        body.remove("stream");
        body.remove("stream_options");
        if (stream) {
            body.put("stream", true);
            body.putObject("stream_options").put("include_usage", true);
        }
        try {
            return JSON.writeValueAsBytes(body);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot encode the request: " + e.getOriginalMessage(), e);
        }
    }

    /** A whole (non-streamed) answer; anything but the expected shape is a bad response. */
    static Answer parseCompletion(String body, boolean chat) throws AttemptFailure {
        JsonNode root = tree(body);
        if (root == null || !root.isObject()) {
            throw AttemptFailure.badResponse("the answer is not a JSON object: " + snippet(body, 200));
        }
        if (root.hasNonNull("error")) {
            throw AttemptFailure.badResponse("the answer is an error: " + errorMessage(root));
        }
        JsonNode choices = root.get("choices");
        if (choices == null || !choices.isArray() || choices.isEmpty() || !choices.get(0).isObject()) {
            throw AttemptFailure.badResponse("the answer has no choices: " + snippet(body, 200));
        }
        JsonNode choice = choices.get(0);
        String text;
        if (chat) {
            JsonNode message = choice.get("message");
            if (message == null || !message.isObject()) {
                throw AttemptFailure.badResponse("the chat answer has no message: " + snippet(body, 200));
            }
            text = content(message.get("content"), body);
        } else {
            JsonNode t = choice.get("text");
            if (t == null || !t.isTextual()) {
                throw AttemptFailure.badResponse("the completion has no text: " + snippet(body, 200));
            }
            text = t.asText();
        }
        JsonNode usage = root.path("usage");
        return new Answer(text, textOrNull(choice.get("finish_reason")), usage.path("prompt_tokens").asInt(0),
                usage.path("completion_tokens").asInt(0));
    }

    /** Chat content: text, or null (no text, e.g. only a refusal or tool call) read as "". */
    private static String content(JsonNode content, String body) throws AttemptFailure {
        if (content == null || content.isNull()) {
            return "";
        }
        if (!content.isTextual()) {
            throw AttemptFailure.badResponse("the chat message content is not text: " + snippet(body, 200));
        }
        return content.asText();
    }

    static JsonNode tree(String text) throws AttemptFailure {
        try {
            return JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw AttemptFailure.badResponse("the answer is not JSON: " + snippet(text, 200));
        }
    }

    static String textOrNull(JsonNode node) {
        return node == null || node.isNull() ? null : node.asText();
    }

    /**
     * The server's own words from an error body: OpenAI's {@code {"error":{"message":...}}}, or the
     * other shapes servers use ({@code {"error":"..."}}, vLLM's older {@code {"message":...}},
     * FastAPI's {@code {"detail":...}}); else the body's first 200 characters.
     */
    static String errorMessage(String body) {
        if (body == null || body.isBlank()) {
            return "(empty body)";
        }
        try {
            JsonNode root = JSON.readTree(body);
            if (root != null && root.isObject()) {
                String m = errorMessage(root);
                if (m != null) {
                    return m;
                }
            }
        } catch (JsonProcessingException notJson) {
            // fall through to the raw text
        }
        return snippet(body, 200);
    }

    private static String errorMessage(JsonNode root) {
        JsonNode error = root.get("error");
        if (error != null && error.isObject() && error.path("message").isTextual()) {
            return error.get("message").asText();
        }
        if (error != null && error.isTextual()) {
            return error.asText();
        }
        if (root.path("message").isTextual()) {
            return root.get("message").asText();
        }
        JsonNode detail = root.get("detail");
        if (detail != null && !detail.isNull()) {
            return detail.isTextual() ? detail.asText() : snippet(detail.toString(), 200);
        }
        return error != null ? snippet(error.toString(), 200) : null;
    }

    /** The first {@code max} characters of {@code text} on one line. */
    static String snippet(String text, int max) {
        return oneLine(text, max);
    }

    static String oneLine(String text, int max) {
        if (text == null) {
            return "";
        }
        String line = text.replaceAll("\\s+", " ").strip();
        return line.length() <= max ? line : line.substring(0, max) + "...";
    }
}
