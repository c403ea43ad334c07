package dev.tether.pipeline.precisewikiqa;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.pipeline.Jsonl;
import java.util.Locale;
import java.util.Optional;

/**
 * Reading the judge's replies. A reply that cannot be read is "unparsed" and counted as such — never
 * guessed, and never copied from a neighbouring row (the original's jsonify step could do that).
 */
final class Verdicts {
    enum Hallucination { CORRECT, INCORRECT, UNVERIFIABLE }

    private Verdicts() {}

    /** {"is_abstaining": true|false} anywhere in the reply (models like to wrap JSON in prose or fences). */
    static Optional<Boolean> abstention(String reply) {
        if (reply == null) {
            return Optional.empty();
        }
        int start = reply.indexOf('{');
        while (start >= 0) {
            int end = reply.indexOf('}', start);
            if (end < 0) {
                break;
            }
            try {
                JsonNode node = Jsonl.JSON.readTree(reply.substring(start, end + 1));
                JsonNode value = node == null ? null : node.get("is_abstaining");
                if (value != null && value.isBoolean()) {
                    return Optional.of(value.asBoolean());
                }
                if (value != null && value.isTextual() && value.asText().matches("(?i)true|false")) {
                    return Optional.of(Boolean.parseBoolean(value.asText().toLowerCase(Locale.ROOT)));
                }
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                // not this brace pair; try the next
            }
            start = reply.indexOf('{', start + 1);
        }
        return Optional.empty();
    }

    /** The first word, if it is CORRECT, INCORRECT or UNVERIFIABLE (any case, punctuation ignored). */
    static Optional<Hallucination> hallucination(String reply) {
        if (reply == null) {
            return Optional.empty();
        }
        String first = reply.strip().split("\\s+", 2)[0].replaceAll("[^A-Za-z]", "").toUpperCase(Locale.ROOT);
        try {
            return first.isEmpty() ? Optional.empty() : Optional.of(Hallucination.valueOf(first));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    /** The answerability check's reply as an answer, or empty when unanswerable or not a short answer. */
    static Optional<String> answer(String reply) {
        if (reply == null) {
            return Optional.empty();
        }
        String r = reply.strip();
        String lower = r.toLowerCase(Locale.ROOT);
        if (r.isEmpty() || lower.contains("unanswerable") || lower.startsWith("unfortunately")) {
            return Optional.empty();
        }
        if (r.split("\\s+").length > 10) {
            return Optional.empty();   // a precise answer is a word or a phrase
        }
        return Optional.of(r);
    }
}
