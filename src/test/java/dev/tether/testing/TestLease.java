package dev.tether.testing;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A lease id for one test, resolved as a test (or lifecycle) method parameter by {@link LeakCheck}:
 * give it to {@code Spawner.Spec.of(..., lease.id())} and every process of the tree carries
 * {@code TETHER_LEASE=<id>}. Processes carrying an id issued here that outlive their test are leaks.
 */
public final class TestLease {
    private static final Set<String> ISSUED = ConcurrentHashMap.newKeySet();
    private static final String ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

    private final String id;

    private TestLease(String id) {
        this.id = id;
    }

    /** A new id, {@code test-} and 8 random characters, remembered as issued by this JVM. */
    static TestLease issue() {
        while (true) {
            StringBuilder id = new StringBuilder("test-");
            ThreadLocalRandom random = ThreadLocalRandom.current();
            for (int i = 0; i < 8; i++) {
                id.append(ALPHABET.charAt(random.nextInt(ALPHABET.length())));
            }
            if (ISSUED.add(id.toString())) {
                return new TestLease(id.toString());
            }
        }
    }

    /** Whether a marker value is one of the ids issued in this JVM or derived from one. */
    static boolean issuedHere(String value) {
        if (ISSUED.contains(value)) {
            return true;
        }
        int dash = value.indexOf('-', "test-".length());
        while (dash > 0) {
            if (ISSUED.contains(value.substring(0, dash))) {
                return true;
            }
            dash = value.indexOf('-', dash + 1);
        }
        return false;
    }

    public String id() {
        return id;
    }

    /** A second lease of the same test (a second server, say): {@code <id>-<suffix>}. */
    public String derived(String suffix) {
        return id + "-" + suffix;
    }

    @Override
    public String toString() {
        return id;
    }
}
