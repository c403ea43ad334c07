package dev.tether.client;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.client.ClientException.Kind;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * One streamed answer, line by line: server-sent events whose {@code data:} is an OpenAI chunk,
 * until {@code data: [DONE]}. Text goes to the caller as it comes and is accumulated; the finish
 * reason and the usage come from whichever chunks carry them (with {@code include_usage}, vLLM sends
 * usage in a last chunk with no choices).
 */
final class SseReader {
    private final boolean chat;
    private final Consumer<String> onText;
    private final StringBuilder text = new StringBuilder();
    private final List<String> data = new ArrayList<>();
    private String finishReason;
    private int promptTokens;
    private int completionTokens;
    private boolean sawEvent;

    SseReader(boolean chat, Consumer<String> onText) {
        this.chat = chat;
        this.onText = onText;
    }

    /** Whether any text reached the caller (then a failed stream cannot be retried). */
    boolean delivered() {
        return !text.isEmpty();
    }

    int deliveredChars() {
        return text.length();
    }

    /** @return true once {@code [DONE]} has been read */
    boolean accept(String line) throws AttemptFailure {
        if (line.isEmpty()) {
            return dispatch();
        }
        if (line.startsWith(":")) {
            return false;   // a comment (keep-alive)
        }
        int colon = line.indexOf(':');
        String field = colon < 0 ? line : line.substring(0, colon);
        String value = colon < 0 ? "" : line.substring(colon + 1);
        if (value.startsWith(" ")) {
            value = value.substring(1);
        }
        switch (field) {
            case "data" -> data.add(value);
            case "error" -> throw new AttemptFailure(Kind.SERVER_ERROR, 0, "the stream reported an error: "
                    + Wire.errorMessage(value), null, null);   // llama.cpp's server sends "error: {...}"
            default -> { }   // event:, id:, retry: and unknown fields mean nothing here
        }
        return false;
    }

    /** At the end of the body: an event not yet closed by a blank line still counts. */
    boolean finish() throws AttemptFailure {
        return dispatch();
    }

    private boolean dispatch() throws AttemptFailure {
        if (data.isEmpty()) {
            return false;
        }
        String payload = String.join("\n", data);
        data.clear();
        sawEvent = true;
        if (payload.strip().equals("[DONE]")) {
            return true;
        }
        JsonNode chunk;
        try {
            chunk = Wire.tree(payload);
        } catch (AttemptFailure e) {
            throw AttemptFailure.badResponse("a stream chunk is not JSON: " + Wire.snippet(payload, 200));
        }
        if (chunk == null || !chunk.isObject()) {
            throw AttemptFailure.badResponse("a stream chunk is not a JSON object: " + Wire.snippet(payload, 200));
        }
        if (chunk.hasNonNull("error")) {
            throw new AttemptFailure(Kind.SERVER_ERROR, 0, "the stream reported an error: "
                    + Wire.errorMessage(payload), null, null);
        }
        JsonNode choices = chunk.path("choices");
        if (choices.isArray() && !choices.isEmpty()) {
            JsonNode choice = choices.get(0);
            JsonNode piece = chat ? choice.path("delta").get("content") : choice.get("text");
            if (piece != null && piece.isTextual() && !piece.asText().isEmpty()) {
                text.append(piece.asText());
                onText.accept(piece.asText());
            }
            String finish = Wire.textOrNull(choice.get("finish_reason"));
            if (finish != null) {
                finishReason = finish;
            }
        }
        JsonNode usage = chunk.get("usage");
        if (usage != null && usage.isObject()) {
            promptTokens = usage.path("prompt_tokens").asInt(promptTokens);
            completionTokens = usage.path("completion_tokens").asInt(completionTokens);
        }
        return false;
    }

    /** The stream ended without {@code [DONE]}: complete if the server had said why it finished. */
    Wire.Answer endedWithoutDone() throws AttemptFailure {
        if (finishReason != null) {
            return answer();   // older llama.cpp servers end a stream without [DONE]
        }
        if (!sawEvent) {
            throw AttemptFailure.badResponse("the answer held no server-sent events");
        }
        throw AttemptFailure.of(Kind.CONNECTION, "the stream ended before [DONE] (" + text.length()
                + " characters delivered)");
    }

    /** A whole answer where a stream was asked for: delivered in one piece. */
    void acceptWhole(Wire.Answer whole) {
        if (!whole.text().isEmpty()) {
            text.append(whole.text());
            onText.accept(whole.text());
        }
    }

    Wire.Answer answer() {
        return new Wire.Answer(text.toString(), finishReason, promptTokens, completionTokens);
    }
}
