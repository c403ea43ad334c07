package dev.tether.client;

import java.time.Duration;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * How an {@link OpenAiClient} talks to its server. Start from {@link #of} (the defaults) and change
 * what you need with the {@code with...} methods.
 *
 * @param endpoints      where requests go: one server ({@link Endpoints#single}, whose URL is read before every
 *                       attempt, since a restarted server may listen elsewhere; a null URL is a connection failure,
 *                       "no server") or the replicas of a pool, each with its own recovery hook
 * @param maxConcurrency HTTP requests in flight at most (callers beyond it queue, fairly)
 * @param connectTimeout for opening a connection
 * @param requestTimeout per attempt: the whole answer for {@code complete}; for {@code stream}, the
 *                       wait for the headers and then for each next line (a stream that keeps talking
 *                       may run longer). Queueing for a permit is not counted.
 * @param maxRetries     attempts after the first, at most
 * @param initialBackoff the first back-off ceiling; doubles per retry up to {@code maxBackoff}
 * @param maxBackoff     the back-off ceiling, and the cap on a server's {@code Retry-After}
 * @param apiKey         sent as {@code Authorization: Bearer ...} (vLLM's {@code --api-key}); null for none
 * @param hangTimeout    with a recovery hook: when requests are in flight and none has got an answer for this
 *                       long, the client asks the hook whether the server hangs ({@link ServerRecovery#hung});
 *                       null for no such watch
 */
public record ClientConfig(Endpoints endpoints, int maxConcurrency, Duration connectTimeout,
                           Duration requestTimeout, int maxRetries, Duration initialBackoff, Duration maxBackoff,
                           String apiKey, Duration hangTimeout) {
    public static final int DEFAULT_MAX_CONCURRENCY = 64;   // suits vLLM's continuous batching
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofMinutes(5);
    public static final int DEFAULT_MAX_RETRIES = 5;
    public static final Duration DEFAULT_INITIAL_BACKOFF = Duration.ofMillis(200);
    public static final Duration DEFAULT_MAX_BACKOFF = Duration.ofSeconds(10);
    /** A run's default (`--hang-timeout`): long enough for any sane answer to start streaming back. */
    public static final Duration DEFAULT_HANG_TIMEOUT = Duration.ofSeconds(120);

    public ClientConfig {
        Objects.requireNonNull(endpoints, "endpoints");
        if (maxConcurrency < 1) {
            throw new IllegalArgumentException("maxConcurrency must be at least 1, not " + maxConcurrency);
        }
        if (maxRetries < 0) {
            throw new IllegalArgumentException("maxRetries must not be negative, not " + maxRetries);
        }
        positive(connectTimeout, "connectTimeout");
        positive(requestTimeout, "requestTimeout");
        positive(initialBackoff, "initialBackoff");
        positive(maxBackoff, "maxBackoff");
        if (initialBackoff.compareTo(maxBackoff) > 0) {
            throw new IllegalArgumentException("initialBackoff " + initialBackoff + " exceeds maxBackoff " + maxBackoff);
        }
        if (hangTimeout != null) {
            positive(hangTimeout, "hangTimeout");
        }
    }

    private static void positive(Duration d, String name) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, not " + d);
        }
    }

    public static ClientConfig of(String baseUrl) {
        Objects.requireNonNull(baseUrl, "baseUrl");
        return of(() -> baseUrl);
    }

    public static ClientConfig of(Supplier<String> baseUrl) {
        return of(Endpoints.single(baseUrl, null));
    }

    /** The replicas of a pool (or any fixed set of endpoints), each with its own recovery. */
    public static ClientConfig of(Endpoints endpoints) {
        return new ClientConfig(endpoints, DEFAULT_MAX_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT,
                DEFAULT_MAX_RETRIES, DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF, null, null);
    }

    /** For a single server: a new URL source, keeping its recovery hook. */
    public ClientConfig withBaseUrl(Supplier<String> v) {
        return withEndpoints(Endpoints.single(v, single().hook()));
    }

    /** For a single server: the hook called when an attempt got no answer at all (null for none). */
    public ClientConfig withRecovery(ServerRecovery v) {
        return withEndpoints(Endpoints.single(single().url(), v));
    }

    private Endpoints.Single single() {
        if (endpoints instanceof Endpoints.Single s) {
            return s;
        }
        throw new IllegalStateException("a pool's endpoints carry their own URLs and recovery hooks");
    }

    public ClientConfig withEndpoints(Endpoints v) {
        return new ClientConfig(v, maxConcurrency, connectTimeout, requestTimeout, maxRetries, initialBackoff,
                maxBackoff, apiKey, hangTimeout);
    }

    public ClientConfig withMaxConcurrency(int v) {
        return new ClientConfig(endpoints, v, connectTimeout, requestTimeout, maxRetries, initialBackoff, maxBackoff,
                apiKey, hangTimeout);
    }

    public ClientConfig withConnectTimeout(Duration v) {
        return new ClientConfig(endpoints, maxConcurrency, v, requestTimeout, maxRetries, initialBackoff, maxBackoff,
                apiKey, hangTimeout);
    }

    public ClientConfig withRequestTimeout(Duration v) {
        return new ClientConfig(endpoints, maxConcurrency, connectTimeout, v, maxRetries, initialBackoff, maxBackoff,
                apiKey, hangTimeout);
    }

    public ClientConfig withMaxRetries(int v) {
        return new ClientConfig(endpoints, maxConcurrency, connectTimeout, requestTimeout, v, initialBackoff,
                maxBackoff, apiKey, hangTimeout);
    }

    /** Both back-off bounds at once (each alone could cross the other on the way). */
    public ClientConfig withBackoff(Duration initial, Duration max) {
        return new ClientConfig(endpoints, maxConcurrency, connectTimeout, requestTimeout, maxRetries, initial, max,
                apiKey, hangTimeout);
    }

    public ClientConfig withApiKey(String v) {
        return new ClientConfig(endpoints, maxConcurrency, connectTimeout, requestTimeout, maxRetries, initialBackoff,
                maxBackoff, v, hangTimeout);
    }

    public ClientConfig withHangTimeout(Duration v) {
        return new ClientConfig(endpoints, maxConcurrency, connectTimeout, requestTimeout, maxRetries, initialBackoff,
                maxBackoff, apiKey, v);
    }

    /** Whether any endpoint has a recovery hook (the hang watch needs one). */
    boolean hasRecovery() {
        for (int i = 0; i < endpoints.count(); i++) {
            if (endpoints.recovery(i) != null) {
                return true;
            }
        }
        return false;
    }

    @Override
    public String toString() {
        String where = endpoints instanceof Endpoints.Single one ? "baseUrl=" + one.url().get()
                : "endpoints=" + endpoints.count();
        return "ClientConfig[" + where + ", maxConcurrency=" + maxConcurrency + ", connectTimeout="
                + connectTimeout + ", requestTimeout=" + requestTimeout + ", maxRetries=" + maxRetries
                + ", backoff=" + initialBackoff + ".." + maxBackoff + ", recovery=" + hasRecovery()
                + ", apiKey=" + (apiKey == null ? "none" : "set") + ", hangTimeout=" + hangTimeout + "]";
    }
}
