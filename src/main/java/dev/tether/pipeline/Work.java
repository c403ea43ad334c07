package dev.tether.pipeline;

/**
 * What a step has left to do, found from its files before any server starts: a resumed run whose output is
 * already complete needs no server at all (starting vLLM only to stop it again costs minutes of GPU time).
 *
 * @param step what the step is called in messages
 * @param left records still to write (missing, failed, or cut off by a crash); 0 = nothing to do
 * @param done what is already there, e.g. "all 200 records already in OUT/generation.jsonl"
 */
public record Work(String step, long left, String done) {
    /** Work for a step that cannot tell (or was told to start over): always needs its server. */
    public static Work some(String step) {
        return new Work(step, Long.MAX_VALUE, "");
    }

    public boolean nothingLeft() {
        return left == 0;
    }

    /** The one line a run prints instead of starting a server. */
    public String nothingToDo() {
        return step + ": " + done + "; nothing to do (no server started)";
    }
}
