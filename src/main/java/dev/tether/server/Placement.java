package dev.tether.server;

import java.util.Map;

/**
 * Where one server of a run's pool stands (DESIGN 7): replica {@code index} (from 1) of {@code count} started
 * together under {@code group}, and the environment that is its own (a {@code CUDA_VISIBLE_DEVICES} slice).
 * A lone server has {@link #SINGLE}. Recorded in the lease, so that {@code ps} groups the replicas of a run.
 */
public record Placement(String group, int index, int count, Map<String, String> env) {
    public static final Placement SINGLE = new Placement(null, 1, 1, Map.of());

    public Placement {
        env = env == null ? Map.of() : Map.copyOf(env);
        if (count < 1 || index < 1 || index > count) {
            throw new IllegalArgumentException("replica " + index + " of " + count);
        }
    }

    public boolean replicated() {
        return count > 1;
    }

    /** "replica 2 of 3", for messages. */
    public String label() {
        return "replica " + index + " of " + count;
    }
}
