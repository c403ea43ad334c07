package dev.tether.pipeline;

/** Which model a step talks to: the one that writes questions, the one under test, the judge, or none (no server). */
public enum Role {
    GENERATOR, MODEL, JUDGE, NONE
}
