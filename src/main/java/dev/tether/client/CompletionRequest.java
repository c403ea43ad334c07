package dev.tether.client;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One generation to ask for: a {@code prompt} (sent to {@code /v1/completions}) or chat
 * {@code messages} (sent to {@code /v1/chat/completions}). Null sampling fields are left out of the
 * body, so the server's defaults apply. {@code extra} goes into the JSON body as it is, after the
 * fields above (so it may override them, e.g. {@code max_completion_tokens}); only {@code stream}
 * and {@code stream_options} stay the client's to set.
 */
public record CompletionRequest(String model, String prompt, List<Message> messages, Integer maxTokens,
                                Double temperature, Double topP, List<String> stop, Long seed,
                                Map<String, Object> extra) {
    /** A chat message; content is plain text. */
    public record Message(String role, String content) {
        public Message {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(content, "content");
        }

        public static Message system(String content) {
            return new Message("system", content);
        }

        public static Message user(String content) {
            return new Message("user", content);
        }

        public static Message assistant(String content) {
            return new Message("assistant", content);
        }
    }

    public CompletionRequest {
        if (model == null || model.isBlank()) {
            throw new IllegalArgumentException("a request needs a model");
        }
        if ((prompt == null) == (messages == null)) {
            throw new IllegalArgumentException("a request has either a prompt or messages, not " +
                    (prompt == null ? "neither" : "both"));
        }
        if (messages != null) {
            if (messages.isEmpty()) {
                throw new IllegalArgumentException("a chat request needs at least one message");
            }
            messages = List.copyOf(messages);
        }
        stop = stop == null ? List.of() : List.copyOf(stop);
        // LinkedHashMap, not Map.copyOf: JSON null is a legitimate value, and the order is kept.
        extra = extra == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(extra));
    }

    public static CompletionRequest prompt(String model, String prompt) {
        Objects.requireNonNull(prompt, "prompt");
        return new CompletionRequest(model, prompt, null, null, null, null, null, null, null);
    }

    public static CompletionRequest chat(String model, List<Message> messages) {
        Objects.requireNonNull(messages, "messages");
        return new CompletionRequest(model, null, messages, null, null, null, null, null, null);
    }

    public boolean isChat() {
        return messages != null;
    }

    public CompletionRequest withMaxTokens(Integer v) {
        return new CompletionRequest(model, prompt, messages, v, temperature, topP, stop, seed, extra);
    }

    public CompletionRequest withTemperature(Double v) {
        return new CompletionRequest(model, prompt, messages, maxTokens, v, topP, stop, seed, extra);
    }

    public CompletionRequest withTopP(Double v) {
        return new CompletionRequest(model, prompt, messages, maxTokens, temperature, v, stop, seed, extra);
    }

    public CompletionRequest withStop(List<String> v) {
        return new CompletionRequest(model, prompt, messages, maxTokens, temperature, topP, v, seed, extra);
    }

    public CompletionRequest withSeed(Long v) {
        return new CompletionRequest(model, prompt, messages, maxTokens, temperature, topP, stop, v, extra);
    }

    public CompletionRequest withExtra(Map<String, Object> v) {
        return new CompletionRequest(model, prompt, messages, maxTokens, temperature, topP, stop, seed, v);
    }

    /** {@code extra} plus one field (a later value for the same name wins). */
    public CompletionRequest with(String field, Object value) {
        Map<String, Object> more = new LinkedHashMap<>(extra);
        more.put(Objects.requireNonNull(field, "field"), value);
        return withExtra(more);
    }
}
