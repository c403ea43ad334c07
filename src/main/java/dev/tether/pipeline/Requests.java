package dev.tether.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.client.ClientException;
import dev.tether.client.Completion;
import dev.tether.client.CompletionRequest;
import java.util.List;

/** Requests built, and results and failures turned into record fields, the same way in every task. */
public final class Requests {
    private Requests() {}

    /** A completion (prompt) or chat (messages) request; a null seed leaves the server's default. */
    public static CompletionRequest request(String model, String prompt, List<CompletionRequest.Message> messages,
                                            int maxTokens, double temperature, double topP, List<String> stop,
                                            Integer seed) {
        CompletionRequest r = messages != null ? CompletionRequest.chat(model, messages) : CompletionRequest.prompt(model, prompt);
        r = r.withMaxTokens(maxTokens).withTemperature(temperature).withTopP(topP);
        if (!stop.isEmpty()) {
            r = r.withStop(stop);
        }
        return seed == null ? r : r.withSeed((long) seed);
    }

    /** One user message. */
    public static List<CompletionRequest.Message> user(String text) {
        return List.of(CompletionRequest.Message.user(text));
    }

    public static void putResult(ObjectNode record, String field, Completion c) {
        record.put(field, c.text());
        record.put("finish_reason", c.finishReason());
        record.putObject("usage").put("prompt_tokens", c.promptTokens()).put("completion_tokens", c.completionTokens());
    }

    /** An explicit failure record: the reason, never a made-up generation. */
    public static ObjectNode putFailure(ObjectNode record, String field, ClientException e) {
        record.putNull(field);
        record.putObject("error").put("kind", e.kind().name().toLowerCase()).put("status", e.status())
                .put("attempts", e.attempts()).put("message", e.getMessage());
        return record;
    }
}
