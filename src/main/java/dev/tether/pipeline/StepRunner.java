package dev.tether.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.client.ClientException;
import dev.tether.client.Completion;
import dev.tether.client.CompletionRequest;
import dev.tether.client.OpenAiClient;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.ToLongFunction;

/**
 * The one skeleton every step runs on: a resumable output file, the items not yet in it, many requests in flight
 * (bounded), a progress bar, failure records, token counts and the closing {@link StepResult}. A step says only what
 * one record is ({@link RecordWork}).
 */
public final class StepRunner {
    private final OpenAiClient client;
    private final int concurrency;
    private final boolean resume;
    private final PrintStream err;

    public StepRunner(OpenAiClient client, int concurrency, boolean resume, PrintStream err) {
        this.client = client;
        this.concurrency = concurrency;
        this.resume = resume;
        this.err = err;
    }

    public int concurrency() {
        return concurrency;
    }

    public boolean resume() {
        return resume;
    }

    public PrintStream err() {
        return err;
    }

    /** The work of one record. */
    public interface RecordWork<T> {
        /** The item's key in the output (as the pass's outputKey reads it from its record); null: never skipped. */
        String key(T item);

        /**
         * The item's finished record; null writes nothing (the item stays undone). A request that failed after its
         * retries throws, and the item becomes its {@link #failure} record.
         */
        ObjectNode record(T item, Calls calls) throws ClientException, InterruptedException;

        /** The item's failure record: never a made-up result, and an "error" that says why (see {@link Requests#putFailure}). */
        ObjectNode failure(T item, ClientException e);

        /**
         * Whether items are skipped by their keys (default). A work whose items are drawn as they are taken (generate)
         * says false, so that no item is drawn before a worker is free to run it.
         */
        default boolean keyed() {
            return true;
        }

        /** Asked after each record: false stops taking new items (enough results exist). */
        default boolean more() {
            return true;
        }
    }

    /** The model calls of one record, counted. */
    public final class Calls {
        private final Run run;

        private Calls(Run run) {
            this.run = run;
        }

        public Completion complete(CompletionRequest request) throws ClientException, InterruptedException {
            Completion c = client.complete(request);
            run.promptTokens.addAndGet(c.promptTokens());
            run.completionTokens.addAndGet(c.completionTokens());
            return c;
        }
    }

    /** What one pass over an output file did. */
    public record Pass(long written, long failed, long resumed) {}

    /** A step being run: its clock and counters, across the passes it makes. */
    public Run start(String step) {
        return new Run(step);
    }

    public final class Run {
        private final String step;
        private final long t0 = System.nanoTime();
        private final AtomicLong failed = new AtomicLong();
        private final AtomicLong promptTokens = new AtomicLong();
        private final AtomicLong completionTokens = new AtomicLong();

        private Run(String step) {
            this.step = step;
        }

        /**
         * One pass: every item not yet in {@code file} becomes a record appended to it (a failure record when its
         * request failed for good), with at most {@code limit} in flight. With a {@code position}, the file is
         * rewritten in that order when the pass ends (records are appended as answers come back).
         *
         * @param total the items the pass has in all, for its progress bar
         */
        public <T> Pass pass(String label, Path file, Function<ObjectNode, String> outputKey, long total,
                             Iterator<T> items, RecordWork<T> work, int limit, ToLongFunction<ObjectNode> position)
                throws Exception {
            AtomicLong written = new AtomicLong();
            AtomicLong passFailed = new AtomicLong();
            Calls calls = new Calls(this);
            long resumed;
            try (ResumableOutput out = ResumableOutput.open(file, resume, outputKey);
                 Progress progress = new Progress(label, total, err)) {
                resumed = out.resumed();
                progress.stepBy(Math.min(resumed, total));
                Iterator<T> left = !work.keyed() ? items : skipping(items, item -> {
                    String key = work.key(item);
                    return key != null && out.done().contains(key);
                });
                Iterator<Workers.Job> jobs = new Iterator<>() {
                    @Override
                    public boolean hasNext() {
                        return left.hasNext();
                    }

                    @Override
                    public Workers.Job next() {
                        T item = left.next();
                        return () -> {
                            ObjectNode record;
                            try {
                                record = work.record(item, calls);
                            } catch (ClientException e) {
                                record = work.failure(item, e);
                                passFailed.incrementAndGet();
                                failed.incrementAndGet();
                            }
                            if (record != null) {
                                out.append(record);
                                written.incrementAndGet();
                                progress.step();
                            }
                            return work.more();
                        };
                    }
                };
                Workers.run(jobs, Math.max(1, limit));
            }
            if (position != null) {
                InOrder.sort(file, position);
            }
            return new Pass(written.get(), passFailed.get(), resumed);
        }

        /** A pass with the usual bound (--concurrency in flight). */
        public <T> Pass pass(String label, Path file, Function<ObjectNode, String> outputKey, long total,
                             Iterator<T> items, RecordWork<T> work, ToLongFunction<ObjectNode> position) throws Exception {
            return pass(label, file, outputKey, total, items, work, concurrency, position);
        }

        public long failed() {
            return failed.get();
        }

        public StepResult result(long records, long resumed, String output) {
            return result(records, failed.get(), resumed, output, List.of(), null);
        }

        public StepResult result(long records, long failures, long resumed, String output, List<String> report,
                                 String problem) {
            return new StepResult(step, records, failures, resumed, promptTokens.get(), completionTokens.get(),
                    Duration.ofNanos(System.nanoTime() - t0), output, report, problem);
        }
    }

    /** The items for which skip is false, taken lazily (a million-line input is never held at once). */
    static <T> Iterator<T> skipping(Iterator<T> items, java.util.function.Predicate<T> skip) {
        return new Iterator<>() {
            private T next;
            private boolean ready;

            @Override
            public boolean hasNext() {
                while (!ready && items.hasNext()) {
                    T item = items.next();
                    if (!skip.test(item)) {
                        next = item;
                        ready = true;
                    }
                }
                return ready;
            }

            @Override
            public T next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                ready = false;
                return next;
            }
        };
    }
}
