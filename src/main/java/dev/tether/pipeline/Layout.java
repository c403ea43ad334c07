package dev.tether.pipeline;

/**
 * Where a task's files go. TETHER: tether's own tree under --output-dir. HALLULENS: the original runner's own paths and
 * key names under --output-dir (a HalluLens checkout), so that its scripts find tether's files and tether theirs.
 */
public enum Layout {
    TETHER, HALLULENS;

    public static Layout parse(String name) {
        for (Layout l : values()) {
            if (l.name().equalsIgnoreCase(name)) {
                return l;
            }
        }
        return null;
    }
}
