package dev.tether.pipeline;

import java.time.Duration;
import java.util.List;

/**
 * What a step did, for the closing summary.
 *
 * @param resumed records found from an earlier run and kept
 * @param report  lines printed on stdout after the summary (eval's metrics), possibly none
 * @param problem why the step's result cannot be trusted although no record failed (eval: no verdict could be read);
 *                null when there is none. A problem makes the run exit 1 with this as its error line.
 */
public record StepResult(String step, long records, long failures, long resumed, long promptTokens,
                         long completionTokens, Duration took, String output, List<String> report, String problem) {

    public StepResult(String step, long records, long failures, long resumed, long promptTokens, long completionTokens,
                      Duration took, String output) {
        this(step, records, failures, resumed, promptTokens, completionTokens, took, output, List.of(), null);
    }

    public String summary() {
        double seconds = Math.max(took.toMillis(), 1) / 1000.0;
        long sent = records - resumed;
        // A step that sent nothing has no rate: "0.0 records/s" would read as a stalled server.
        String rate = sent > 0 ? String.format(" (%.1f records/s)", sent / seconds) : "";
        return String.format("%s: %d records (%d resumed from an earlier run), %d failed, %d prompt + %d completion tokens, "
                        + "%.1f s%s -> %s", step, records, resumed, failures, promptTokens, completionTokens,
                seconds, rate, output);
    }
}
