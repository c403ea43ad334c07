package dev.tether.client;

import java.time.Duration;

/**
 * One generated text with what the server said about it.
 *
 * @param finishReason     {@code stop}, {@code length}, ... as the server said; null if it said nothing
 * @param promptTokens     from the answer's {@code usage}; 0 when the server sent none
 * @param completionTokens from the answer's {@code usage}; 0 when the server sent none
 * @param attempts         HTTP attempts it took (1 when the first succeeded)
 * @param latency          the whole call: waiting for a permit, every attempt, back-off and recovery
 */
public record Completion(String text, String finishReason, int promptTokens, int completionTokens, int attempts,
                         Duration latency) {
    public int totalTokens() {
        return promptTokens + completionTokens;
    }
}
