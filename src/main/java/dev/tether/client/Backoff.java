package dev.tether.client;

import java.time.Duration;
import java.time.Instant;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Exponential back-off with full jitter (a uniform pause between 0 and the current ceiling): many
 * requests that failed together — all of them, when a server restarts — come back spread out
 * instead of in one wave. A server's Retry-After wins, capped by the ceiling.
 */
final class Backoff {
    private Backoff() {}

    /**
     * @param retry      1 for the pause before the first retry
     * @param retryAfter the server's wish, or null
     */
    static long delayNanos(int retry, Duration initial, Duration max, Duration retryAfter) {
        long cap = max.toNanos();
        if (retryAfter != null) {
            return Math.clamp(retryAfter.toNanos(), 0, cap);
        }
        long ceiling = initial.toNanos();
        for (int i = 1; i < retry && ceiling < cap; i++) {
            ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
        }
        ceiling = Math.min(ceiling, cap);
        return ThreadLocalRandom.current().nextLong(ceiling + 1);
    }

    /**
     * The back-off pause itself. Sleeping is the point here, not a stand-in for waiting on a
     * condition; it is interruptible, and on a virtual thread it costs no carrier thread.
     */
    static void pause(long nanos) throws InterruptedException {
        if (nanos > 0) {
            Thread.sleep(Duration.ofNanos(nanos));
        }
    }

    /** Retry-After as seconds or as an HTTP date; null when it is neither. */
    static Duration parseRetryAfter(String value, Instant now) {
        String v = value.trim();
        try {
            long seconds = Long.parseLong(v);
            return seconds < 0 ? null : Duration.ofSeconds(seconds);
        } catch (NumberFormatException notSeconds) {
            try {
                Instant at = ZonedDateTime.parse(v, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant();
                Duration d = Duration.between(now, at);
                return d.isNegative() ? Duration.ZERO : d;
            } catch (DateTimeParseException notADate) {
                return null;
            }
        }
    }
}
