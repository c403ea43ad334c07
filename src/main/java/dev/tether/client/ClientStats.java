package dev.tether.client;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Live counters of one {@link OpenAiClient}, for a run's summary and progress line. Each read is
 * current; two reads are not a consistent snapshot (nobody needs one for a summary).
 */
public final class ClientStats {
    final AtomicLong requests = new AtomicLong();
    final AtomicLong succeeded = new AtomicLong();
    final AtomicLong failures = new AtomicLong();
    final AtomicLong attempts = new AtomicLong();
    final AtomicLong retries = new AtomicLong();
    final AtomicLong inFlight = new AtomicLong();
    /** Answers (of any status) per endpoint: how a pool's requests were spread. */
    final java.util.concurrent.atomic.AtomicLongArray answeredBy;

    ClientStats(int endpoints) {
        answeredBy = new java.util.concurrent.atomic.AtomicLongArray(endpoints);
    }

    /** Attempts that got an answer (of any status) from endpoint {@code i} of the client's endpoints. */
    public long answeredBy(int i) {
        return answeredBy.get(i);
    }

    /** Calls of complete/stream so far (each counts once however often it was retried). */
    public long requests() {
        return requests.get();
    }

    public long succeeded() {
        return succeeded.get();
    }

    /** Requests that ended in a {@link ClientException} (an interrupted request is not a failure). */
    public long failures() {
        return failures.get();
    }

    /** HTTP attempts sent, first tries and retries. */
    public long attempts() {
        return attempts.get();
    }

    public long retries() {
        return retries.get();
    }

    /** HTTP attempts under way now (each holds one of the {@code maxConcurrency} permits). */
    public long inFlight() {
        return inFlight.get();
    }

    @Override
    public String toString() {
        return "requests=" + requests() + " succeeded=" + succeeded() + " failures=" + failures() + " attempts="
                + attempts() + " retries=" + retries() + " inFlight=" + inFlight();
    }
}
