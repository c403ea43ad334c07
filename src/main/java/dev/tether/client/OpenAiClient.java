package dev.tether.client;

import dev.tether.client.ClientException.Kind;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * Keeps an OpenAI-compatible server (vLLM, llama.cpp's server, tether's engine) busy: callers are
 * many virtual threads, each blocking in {@link #complete} or {@link #stream}; a fair semaphore lets
 * {@code maxConcurrency} HTTP requests through at a time over one keep-alive HTTP/1.1 client. An
 * attempt holds a permit only while it is on the wire — not while it backs off or waits for a
 * recovery — so a failing request never starves the others.
 *
 * <p>Retries, with exponential back-off and full jitter: connection errors, timeouts, 429, 5xx and a
 * 2xx whose body is not the expected JSON. Other 4xx fail at once with the server's message. When an
 * attempt got no answer at all, the {@link ServerRecovery} hook (if any) runs before the retry; if it
 * says the server is gone, the request fails at once. A retry after a recovery costs one unit of the
 * retry budget like any other — the recovery's own duration is free — and no retry is left for a
 * recovery once the budget is spent. A stream is retried only while none of its text has reached the
 * caller.
 *
 * <p>Interruption (Ctrl-C in a run) ends a call with {@link InterruptedException} at once, whatever it
 * was doing, and aborts its HTTP exchange; it is never turned into a {@link ClientException}, so the
 * caller can tell "stopped" from "failed".
 *
 * <p>With a hang timeout and a recovery hook, a watcher thread notices when requests are in flight
 * and none has got an answer (or, for a stream, a line) for that long, and asks the hook
 * ({@link ServerRecovery#hung}) whether the server hangs: a server frozen mid-run would otherwise hold
 * every request for the whole request timeout, on every retry.
 *
 * <p>With several {@link Endpoints} (the replicas of a pool), each attempt goes to the usable endpoint with the
 * fewest of this client's attempts outstanding (ties in turn), preferring one that is not being restarted; an
 * attempt that got no answer asks its own endpoint's hook, and the hang watch looks at each endpoint on its own.
 * When an endpoint's hook gives up (the replica is dropped), the request is retried on the others, if any are left.
 */
public final class OpenAiClient implements AutoCloseable {
    private static final String COMPLETIONS = "/completions";
    private static final String CHAT_COMPLETIONS = "/chat/completions";
    private static final int ERROR_BODY_MAX = 8192;

    private final ClientConfig config;
    private final ExecutorService executor;
    private final HttpClient http;
    private final Semaphore permits;
    private final Endpoints endpoints;
    private final Route[] routes;
    private final java.util.concurrent.atomic.AtomicInteger turn = new java.util.concurrent.atomic.AtomicInteger();
    private final ClientStats stats;
    private final Thread hangWatch;
    private volatile boolean closed;

    public OpenAiClient(ClientConfig config) {
        this.config = Objects.requireNonNull(config, "config");
        this.executor = Executors.newVirtualThreadPerTaskExecutor();
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(config.connectTimeout())
                .followRedirects(HttpClient.Redirect.NEVER)
                .executor(executor)
                .build();
        this.permits = new Semaphore(config.maxConcurrency(), true);
        this.endpoints = config.endpoints();
        this.routes = new Route[endpoints.count()];
        for (int i = 0; i < routes.length; i++) {
            ServerRecovery hook = endpoints.recovery(i);
            routes[i] = new Route(i, hook == null ? null : ServerRecovery.singleFlight(hook));
        }
        this.stats = new ClientStats(routes.length);
        this.hangWatch = !config.hasRecovery() || config.hangTimeout() == null ? null
                : Thread.ofPlatform().daemon().name("tether-hang-watch").start(this::watchForHangs);
    }

    /** One endpoint as this client sees it: its recovery (single flight), its load, its progress. */
    private static final class Route {
        final int index;
        final ServerRecovery recovery;
        final java.util.concurrent.atomic.AtomicInteger outstanding = new java.util.concurrent.atomic.AtomicInteger();
        /** Answers (of any status) and stream lines received: what the hang watch calls progress. */
        final java.util.concurrent.atomic.AtomicLong progress = new java.util.concurrent.atomic.AtomicLong();

        Route(int index, ServerRecovery recovery) {
            this.index = index;
            this.recovery = recovery;
        }
    }

    /** An attempt's endpoint and the base URL read for it. */
    private record Pick(Route route, String base) {}

    /**
     * The usable endpoint with the fewest attempts outstanding, one not being restarted first; the scan starts
     * at a turning offset so that ties go round. A lone endpoint is always picked (its URL may be null: "no server").
     */
    private Pick pick() {
        if (routes.length == 1) {
            return new Pick(routes[0], endpoints.baseUrl(0));
        }
        int start = Math.floorMod(turn.getAndIncrement(), routes.length);
        Pick best = null;
        boolean bestRecovering = true;
        int bestLoad = Integer.MAX_VALUE;
        for (int k = 0; k < routes.length; k++) {
            Route r = routes[(start + k) % routes.length];
            String base = endpoints.baseUrl(r.index);
            if (base == null) {
                continue;
            }
            boolean recovering = endpoints.recovering(r.index);
            int load = r.outstanding.get();
            if (best == null || (bestRecovering && !recovering) || (recovering == bestRecovering && load < bestLoad)) {
                best = new Pick(r, base);
                bestRecovering = recovering;
                bestLoad = load;
            }
        }
        return best;
    }

    /** Whether an endpoint other than {@code gone} can still take requests. */
    private boolean anotherUsable(Route gone) {
        for (Route r : routes) {
            if (r != gone && endpoints.baseUrl(r.index) != null) {
                return true;
            }
        }
        return false;
    }

    /**
     * Ticks about ten times per hang timeout (at most once a second), looking at each endpoint on its own: its
     * quiet time starts over with every answer from it, whenever nothing is in flight to it, and after each hang
     * check.
     */
    private void watchForHangs() {
        long timeout = config.hangTimeout().toNanos();
        long tick = Math.clamp(timeout / 10, TimeUnit.MILLISECONDS.toNanos(10), TimeUnit.SECONDS.toNanos(1));
        long[] quietSince = new long[routes.length];
        long[] seen = new long[routes.length];
        java.util.Arrays.fill(quietSince, System.nanoTime());
        while (!closed) {
            try {
                TimeUnit.NANOSECONDS.sleep(tick);
            } catch (InterruptedException e) {
                return;   // closed
            }
            for (Route r : routes) {
                long now = System.nanoTime();
                long p = r.progress.get();
                if (r.recovery == null || r.outstanding.get() == 0 || p != seen[r.index]) {
                    seen[r.index] = p;
                    quietSince[r.index] = now;
                } else if (now - quietSince[r.index] >= timeout) {
                    try {
                        r.recovery.hung(Duration.ofNanos(now - quietSince[r.index]));
                    } catch (InterruptedException e) {
                        return;
                    } catch (RuntimeException e) {
                        System.err.println("tether: the hang check failed: " + AttemptFailure.describe(e));
                    }
                    seen[r.index] = r.progress.get();
                    quietSince[r.index] = System.nanoTime();
                }
            }
        }
    }

    public ClientConfig config() {
        return config;
    }

    public ClientStats stats() {
        return stats;
    }

    /**
     * One completion, blocking until it is done or has failed for good.
     *
     * @throws ClientException      it failed (after the retries it was allowed)
     * @throws InterruptedException the calling thread was interrupted (the request is abandoned)
     */
    public Completion complete(CompletionRequest request) throws ClientException, InterruptedException {
        return call(request, null);
    }

    /**
     * One completion as a stream: {@code onText} gets each piece of text as it arrives, on the calling
     * thread; the returned completion holds all of it. An exception from {@code onText} aborts the
     * stream and propagates as it is.
     */
    public Completion stream(CompletionRequest request, Consumer<String> onText)
            throws ClientException, InterruptedException {
        return call(request, Objects.requireNonNull(onText, "onText"));
    }

    private Completion call(CompletionRequest request, Consumer<String> onText)
            throws ClientException, InterruptedException {
        Objects.requireNonNull(request, "request");
        if (closed) {
            throw new IllegalStateException("the client is closed");
        }
        long started = System.nanoTime();
        byte[] body = Wire.requestBody(request, onText != null);
        String path = request.isChat() ? CHAT_COMPLETIONS : COMPLETIONS;
        stats.requests.incrementAndGet();
        try {
            Completion done = attempts(request.isChat(), path, body, onText, started);
            stats.succeeded.incrementAndGet();
            return done;
        } catch (ClientException e) {
            stats.failures.incrementAndGet();
            throw e;
        }
    }

    private Completion attempts(boolean chat, String path, byte[] body, Consumer<String> onText, long started)
            throws ClientException, InterruptedException {
        int attempts = 0;
        int retries = 0;
        while (true) {
            attempts++;
            String url = null;
            SseReader reader = onText == null ? null : new SseReader(chat, onText);
            AttemptFailure failure;
            long attemptStart;
            permits.acquire();
            Pick pick = pick();
            Route route = pick == null ? null : pick.route();
            stats.inFlight.incrementAndGet();
            stats.attempts.incrementAndGet();
            if (route != null) {
                route.outstanding.incrementAndGet();
            }
            attemptStart = System.nanoTime();
            try {
                if (pick == null) {
                    throw AttemptFailure.of(Kind.CONNECTION, "no server left to send to (every replica is gone)");
                }
                String base = pick.base();
                if (base == null) {
                    throw AttemptFailure.of(Kind.CONNECTION, "no server URL (the server is not running)");
                }
                url = Wire.endpoint(base, path);
                Wire.Answer a = reader == null ? send(url, body, chat, route) : stream(url, body, chat, reader, route);
                answered(route);
                return new Completion(a.text(), a.finishReason(), a.promptTokens(), a.completionTokens(), attempts,
                        Duration.ofNanos(System.nanoTime() - started));
            } catch (AttemptFailure f) {
                failure = f;
                if (f.kind != Kind.CONNECTION && f.kind != Kind.TIMEOUT) {
                    answered(route);   // an answer, if not a good one: the server is not hung
                }
            } finally {
                if (route != null) {
                    route.outstanding.decrementAndGet();
                }
                stats.inFlight.decrementAndGet();
                permits.release();
            }

            ClientException error = failure.toException(url, attempts, attemptStart, "");
            if (closed) {
                throw failure.toException(url, attempts, attemptStart, "the client was closed");
            }
            if (!failure.kind.retryable()) {
                throw error;
            }
            if (reader != null && reader.delivered()) {
                throw failure.toException(url, attempts, attemptStart, "not retried: text had already been streamed");
            }
            if (retries >= config.maxRetries()) {
                throw error;
            }
            retries++;
            stats.retries.incrementAndGet();
            if (route == null) {
                throw error;   // nothing is left to send to, and nothing to recover
            }
            if (route.recovery != null && error.noAnswer()) {
                boolean back;
                try {
                    back = route.recovery.recover(error);
                } catch (ServerStoppedException e) {
                    throw e;   // the run ends: not this request's failure
                } catch (RuntimeException e) {
                    throw failure.toException(url, attempts, attemptStart, "server recovery failed: "
                            + AttemptFailure.describe(e));
                }
                if (!back && !anotherUsable(route)) {
                    throw failure.toException(url, attempts, attemptStart, "the server is gone (recovery gave up)");
                }
                if (!back) {
                    continue;   // that replica is dropped: the retry goes to another one, at once
                }
            }
            Backoff.pause(Backoff.delayNanos(retries, config.initialBackoff(), config.maxBackoff(),
                    failure.retryAfter));
        }
    }

    private HttpRequest request(String url, byte[] body, boolean stream) throws AttemptFailure {
        HttpRequest.Builder b;
        try {
            b = HttpRequest.newBuilder(URI.create(url));
        } catch (IllegalArgumentException e) {
            throw AttemptFailure.of(Kind.REJECTED, "invalid server URL: " + e.getMessage());
        }
        b.header("Content-Type", "application/json")
                .header("Accept", stream ? "text/event-stream" : "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (config.apiKey() != null) {
            b.header("Authorization", "Bearer " + config.apiKey());
        }
        return b.build();
    }

    /** Waits for the response (headers, or all of it) within the attempt's deadline. */
    private <T> HttpResponse<T> await(CompletableFuture<HttpResponse<T>> pending, long deadline, String what)
            throws AttemptFailure, InterruptedException {
        try {
            return pending.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            pending.cancel(true);   // aborts the exchange (JDK 16+)
            throw AttemptFailure.of(Kind.TIMEOUT, "no " + what + " within " + config.requestTimeout().toMillis()
                    + " ms");
        } catch (InterruptedException e) {
            pending.cancel(true);
            throw e;
        } catch (ExecutionException e) {
            throw AttemptFailure.transport(e.getCause(), config.connectTimeout());
        }
    }

    /** An answer or a stream line from the route's endpoint: progress for its hang watch. */
    private void answered(Route route) {
        if (route != null) {
            route.progress.incrementAndGet();
            stats.answeredBy.incrementAndGet(route.index);
        }
    }

    private Wire.Answer send(String url, byte[] body, boolean chat, Route route) throws AttemptFailure, InterruptedException {
        long deadline = System.nanoTime() + config.requestTimeout().toNanos();
        HttpResponse<String> response = await(http.sendAsync(request(url, body, false),
                HttpResponse.BodyHandlers.ofString()), deadline, "answer");
        int status = response.statusCode();
        if (status / 100 != 2) {
            throw AttemptFailure.status(status, response.headers(), response.body());
        }
        return Wire.parseCompletion(response.body(), chat);
    }

    private Wire.Answer stream(String url, byte[] body, boolean chat, SseReader reader, Route route)
            throws AttemptFailure, InterruptedException {
        long timeout = config.requestTimeout().toNanos();
        LineQueue lines = new LineQueue();
        HttpResponse<LineQueue> response = await(http.sendAsync(request(url, body, true), info -> lines),
                System.nanoTime() + timeout, "response headers");
        boolean complete = false;
        try {
            int status = response.statusCode();
            if (status / 100 != 2) {
                throw AttemptFailure.status(status, response.headers(),
                        lines.rest(ERROR_BODY_MAX, System.nanoTime() + timeout));
            }
            if (response.headers().firstValue("Content-Type").orElse("").startsWith("application/json")) {
                // The server ignored "stream": take the whole answer and hand it over in one piece.
                Wire.Answer whole = Wire.parseCompletion(lines.rest(Integer.MAX_VALUE, System.nanoTime() + timeout),
                        chat);
                complete = true;
                reader.acceptWhole(whole);
                return whole;
            }
            while (true) {
                String line = lines.next(timeout);
                route.progress.incrementAndGet();
                if (line == null) {
                    Wire.Answer a = reader.finish() ? reader.answer() : reader.endedWithoutDone();
                    complete = true;
                    return a;
                }
                if (reader.accept(line)) {
                    complete = true;   // the rest of the body (if any) drains into the queue, keeping the connection
                    return reader.answer();
                }
            }
        } catch (TimeoutException e) {
            throw AttemptFailure.of(Kind.TIMEOUT, "the stream was silent for " + config.requestTimeout().toMillis()
                    + " ms (" + reader.deliveredChars() + " characters delivered)");
        } catch (IOException e) {
            throw AttemptFailure.transport(e, config.connectTimeout());
        } finally {
            if (!complete) {
                lines.cancel();
            }
        }
    }

    /**
     * Aborts requests in flight (their callers get a {@link ClientException}, not retried) and frees
     * the connections. Calls after close are a programming error ({@link IllegalStateException}).
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (hangWatch != null) {
            hangWatch.interrupt();
        }
        http.shutdownNow();
        try {
            http.awaitTermination(Duration.ofSeconds(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        executor.shutdownNow();
    }
}
