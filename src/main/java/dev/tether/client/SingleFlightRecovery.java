package dev.tether.client;

import java.util.concurrent.locks.ReentrantLock;

/**
 * {@link ServerRecovery#singleFlight}: one recovery at a time; callers that waited for it, or whose
 * failure predates its end, share its result. Fairness keeps callers in arrival order.
 */
final class SingleFlightRecovery implements ServerRecovery {
    private final ServerRecovery delegate;
    private final ReentrantLock lock = new ReentrantLock(true);
    private boolean recovered;       // guarded by lock: whether any recovery has finished
    private long lastEndNanos;       // guarded by lock
    private boolean lastResult;      // guarded by lock

    SingleFlightRecovery(ServerRecovery delegate) {
        this.delegate = java.util.Objects.requireNonNull(delegate, "delegate");
    }

    @Override
    public boolean recover(ClientException cause) throws InterruptedException {
        lock.lockInterruptibly();
        try {
            if (recovered && cause.attemptStartNanos - lastEndNanos < 0) {
                return lastResult;
            }
            boolean result = delegate.recover(cause);
            recovered = true;
            lastEndNanos = System.nanoTime();
            lastResult = result;
            return result;
        } finally {
            lock.unlock();
        }
    }

    /** Under the same lock: a hang check never runs beside a recovery. */
    @Override
    public void hung(java.time.Duration silence) throws InterruptedException {
        lock.lockInterruptibly();
        try {
            delegate.hung(silence);
        } finally {
            lock.unlock();
        }
    }
}
