package dev.tether.client;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A response body as lines, handed from the HTTP client's threads to the caller's through a queue.
 * Unlike {@code BodyHandlers.ofLines()}, the caller can wait for the next line with a timeout (a
 * stream that goes silent must fail) and {@link #cancel} from its own thread aborts the exchange.
 * The body counts as available at once, so {@code sendAsync} completes when the headers arrive.
 * SSE bodies are small; the queue is unbounded rather than flow-controlled.
 */
final class LineQueue implements HttpResponse.BodySubscriber<LineQueue> {
    private static final Object END = new Object();

    private final LinkedBlockingQueue<Object> items = new LinkedBlockingQueue<>();
    private final ByteArrayOutputStream partial = new ByteArrayOutputStream();   // only the client's thread
    private Flow.Subscription subscription;   // guarded by this
    private boolean cancelled;                // guarded by this
    private boolean ended;                    // the caller's thread: END or an error was taken

    @Override
    public void onSubscribe(Flow.Subscription s) {
        boolean cancel;
        synchronized (this) {
            subscription = s;
            cancel = cancelled;
        }
        if (cancel) {
            s.cancel();
        } else {
            s.request(Long.MAX_VALUE);
        }
    }

    @Override
    public void onNext(List<ByteBuffer> buffers) {
        for (ByteBuffer b : buffers) {
            while (b.hasRemaining()) {
                byte c = b.get();
                if (c == '\n') {   // never inside a multi-byte UTF-8 sequence, so splitting bytes is safe
                    emit();
                } else {
                    partial.write(c);
                }
            }
        }
    }

    private void emit() {
        String line = partial.toString(StandardCharsets.UTF_8);
        partial.reset();
        items.add(line.endsWith("\r") ? line.substring(0, line.length() - 1) : line);
    }

    @Override
    public void onError(Throwable t) {
        items.add(t);
    }

    @Override
    public void onComplete() {
        if (partial.size() > 0) {
            emit();
        }
        items.add(END);
    }

    @Override
    public CompletionStage<LineQueue> getBody() {
        return CompletableFuture.completedStage(this);
    }

    /**
     * The next line, or null at the end of the body.
     *
     * @throws IOException      the connection failed mid-body
     * @throws TimeoutException nothing came within the timeout
     */
    String next(long timeoutNanos) throws IOException, InterruptedException, TimeoutException {
        if (ended) {
            return null;
        }
        Object item = items.poll(timeoutNanos, TimeUnit.NANOSECONDS);
        if (item == null) {
            throw new TimeoutException();
        }
        if (item == END) {
            ended = true;
            return null;
        }
        if (item instanceof Throwable t) {
            ended = true;
            throw t instanceof IOException io ? io : new IOException(t);
        }
        return (String) item;
    }

    /** The rest of the body as text (at most {@code max} characters kept), for an error message. */
    String rest(int max, long deadlineNanos) throws IOException, InterruptedException, TimeoutException {
        StringBuilder text = new StringBuilder();
        String line;
        while ((line = next(Math.max(1, deadlineNanos - System.nanoTime()))) != null) {
            if (text.length() < max) {
                text.append(line).append('\n');
            }
        }
        return text.length() > max ? text.substring(0, max) : text.toString();
    }

    /** Aborts the exchange (the connection is closed, not reused); safe from any thread, any time. */
    void cancel() {
        Flow.Subscription s;
        synchronized (this) {
            cancelled = true;
            s = subscription;
        }
        if (s != null) {
            s.cancel();
        }
    }
}
