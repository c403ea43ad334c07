package dev.tether.client;

import java.util.Objects;
import java.util.function.Supplier;

/**
 * Where a client's requests go: one server, or the replicas of a pool (DESIGN 7). The client sends each attempt
 * to the usable endpoint with the fewest of its requests outstanding, and when an attempt gets no answer it asks
 * that endpoint's own {@link ServerRecovery} (single flight per endpoint). The set is fixed for the life of a
 * client; which of its members are usable changes.
 */
public interface Endpoints {
    /** How many endpoints there are (fixed). */
    int count();

    /**
     * The base URL of endpoint {@code i} ({@code http://host:port} or {@code .../v1}), read before every attempt;
     * null when it is not usable: gone for good (a replica that could not come back) or not started.
     */
    String baseUrl(int i);

    /**
     * True while endpoint {@code i} is being restarted: new attempts go to the others when there are any. Its own
     * failed attempts still wait in its recovery.
     */
    default boolean recovering(int i) {
        return false;
    }

    /** The recovery hook of endpoint {@code i}, asked once per client; null for none. */
    ServerRecovery recovery(int i);

    /** One server, whose URL may change (a restart on another port), with an optional recovery hook. */
    static Endpoints single(Supplier<String> baseUrl, ServerRecovery recovery) {
        return new Single(baseUrl, recovery);
    }

    record Single(Supplier<String> url, ServerRecovery hook) implements Endpoints {
        public Single {
            Objects.requireNonNull(url, "baseUrl");
        }

        @Override
        public int count() {
            return 1;
        }

        @Override
        public String baseUrl(int i) {
            return url.get();
        }

        @Override
        public ServerRecovery recovery(int i) {
            return hook;
        }
    }
}
