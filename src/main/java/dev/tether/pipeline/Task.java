package dev.tether.pipeline;

import java.util.List;

/**
 * A batch job {@code tether run --task NAME} runs: its steps in order, and the checks of its options and inputs that
 * happen before any server starts (a bad input is exit 2 with nothing started).
 */
public interface Task {
    String name();

    /** One line for help and usage messages. */
    String summary();

    /** The step names {@code --step} takes, in the order {@code --step all} runs them. */
    List<String> steps();

    /** Tokens per answer when --max-tokens is not given. */
    default int defaultMaxTokens() {
        return 128;
    }

    /** Checks of the options alone (no file read): a combination the task cannot use is an input error. */
    default void checkOptions(TaskOptions options) throws InputException {}

    /**
     * Reads and checks the inputs and earlier outputs the named steps need (every bad line reported, a resume into
     * files made with other settings refused) and returns the steps, ready to run.
     */
    List<Step> plan(TaskOptions options, List<String> stepNames) throws Exception;
}
