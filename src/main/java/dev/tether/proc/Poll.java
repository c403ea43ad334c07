package dev.tether.proc;

import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * Waiting on a condition with a deadline: the only way tether waits. The first checks come quickly
 * (a process usually exits within a few ms of SIGTERM) and the interval backs off to a ceiling, so a
 * long wait costs little CPU while a short one is noticed at once.
 */
public final class Poll {
    private static final long FIRST_INTERVAL_NANOS = 500_000;        // 0.5 ms

    private Poll() {}

    /** Polls until {@code condition} holds or {@code timeout} passes; returns whether it held. */
    public static boolean until(BooleanSupplier condition, Duration timeout) {
        return until(condition, timeout, Duration.ofMillis(10));
    }

    public static boolean until(BooleanSupplier condition, Duration timeout, Duration maxInterval) {
        long deadline = System.nanoTime() + timeout.toNanos();
        long interval = FIRST_INTERVAL_NANOS;
        long ceiling = Math.max(FIRST_INTERVAL_NANOS, maxInterval.toNanos());
        while (true) {
            if (condition.getAsBoolean()) {
                return true;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            LockSupport.parkNanos(Math.min(interval, left));
            if (Thread.interrupted()) {
                Thread.currentThread().interrupt();
                return condition.getAsBoolean();
            }
            interval = Math.min(ceiling, interval * 2);
        }
    }
}
