package dev.tether.reliability;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Random;

/**
 * What the reliability suites share: their size (short in the normal test run, full under
 * {@code ./run-reliability}), their seed, and where each writes its figures.
 *
 * <p>Properties: {@code tether.reliability.size} = {@code short} (default) or {@code full};
 * {@code tether.reliability.seed} replays a run (each suite prints the seed it used).
 */
public final class Reliability {
    private Reliability() {}

    public static boolean full() {
        return "full".equals(System.getProperty("tether.reliability.size", "short"));
    }

    /** {@code shortValue} in the normal suite, {@code fullValue} under ./run-reliability; a property overrides both. */
    public static int size(String property, int shortValue, int fullValue) {
        String set = System.getProperty("tether.reliability." + property);
        return set != null ? Integer.parseInt(set) : full() ? fullValue : shortValue;
    }

    /** The seed to use: {@code tether.reliability.seed} if set, else a fresh one. Print it. */
    public static long seed() {
        String set = System.getProperty("tether.reliability.seed");
        return set != null ? Long.parseLong(set) : new Random().nextLong();
    }

    /**
     * Writes {@code target/reliability/<suite>.md} (replacing an earlier one) and echoes it to stdout, so the
     * figures of the last run can be copied into RELIABILITY.md.
     */
    public static void report(String suite, String markdown) {
        Path dir = Path.of("target", "reliability");
        String text = "<!-- " + suite + ", " + (full() ? "full" : "short") + " run, " + Instant.now() + " -->\n" + markdown;
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve(suite + ".md"), text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        System.out.println(text);
    }
}
