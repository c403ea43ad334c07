package dev.tether.pipeline;

import java.time.Duration;

/**
 * What a step did, for the closing summary.
 *
 * @param resumed records found from an earlier run and kept
 */
public record StepResult(String step, long records, long failures, long resumed, long promptTokens,
                         long completionTokens, Duration took, String output) {

    public String summary() {
        double seconds = Math.max(took.toMillis(), 1) / 1000.0;
        return String.format("%s: %d records (%d resumed from an earlier run), %d failed, %d prompt + %d completion tokens, "
                        + "%.1f s (%.1f records/s) -> %s", step, records, resumed, failures, promptTokens, completionTokens,
                seconds, (records - resumed) / seconds, output);
    }
}
