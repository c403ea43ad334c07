package dev.tether.pipeline;

import java.util.Iterator;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs many small blocking jobs (one request each) on virtual threads with a bound on how many
 * exist at once. Jobs are taken from an iterator only as permits free up, so a million-record input
 * never becomes a million queued tasks: memory stays proportional to the bound, not to N.
 */
public final class Workers {
    /** A job; returning false asks the run to stop taking new jobs (e.g. enough results exist). */
    public interface Job {
        boolean run() throws Exception;
    }

    private Workers() {}

    /**
     * @throws Exception the first failure of any job (the run stops taking jobs then); record-level
     *                   failures are the jobs' business and are not thrown
     */
    public static void run(Iterator<Job> jobs, int limit) throws Exception {
        Semaphore permits = new Semaphore(limit);
        AtomicReference<Exception> failure = new AtomicReference<>();
        java.util.concurrent.atomic.AtomicBoolean enough = new java.util.concurrent.atomic.AtomicBoolean();
        try (var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            while (failure.get() == null && !enough.get() && jobs.hasNext()) {
                permits.acquire();
                if (failure.get() != null || enough.get()) {
                    permits.release();
                    break;
                }
                Job job = jobs.next();
                pool.execute(() -> {
                    try {
                        if (!job.run()) {
                            enough.set(true);
                        }
                    } catch (Exception e) {
                        failure.compareAndSet(null, e);
                    } finally {
                        permits.release();
                    }
                });
            }
        }   // close() waits for the jobs in flight
        if (failure.get() != null) {
            throw failure.get();
        }
    }
}
