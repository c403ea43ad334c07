package dev.tether.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.client.ClientException.Kind;
import dev.tether.client.CompletionRequest.Message;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FlakyOpenAiServer;
import dev.tether.proc.Poll;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The client against a real HTTP server on a real socket ({@link FlakyOpenAiServer}, in this JVM):
 * both endpoints, streaming, each kind of failure and whether it is retried, the concurrency bound,
 * interruption. Back-offs and timeouts are short so the class stays fast.
 */
class OpenAiClientTest {
    private static final CompletionRequest PROMPT = CompletionRequest.prompt("m", "The capital of France is");
    private static final CompletionRequest CHAT = CompletionRequest.chat("m",
            List.of(Message.system("Be brief."), Message.user("What is the capital of France?")));

    private final List<AutoCloseable> toClose = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (AutoCloseable c : toClose.reversed()) {
            c.close();
        }
    }

    private FlakyOpenAiServer server(String... args) throws Exception {
        FlakyOpenAiServer server = FlakyOpenAiServer.start(args);
        toClose.add(server);
        return server;
    }

    /** Fast defaults for tests: millisecond back-offs, a 5 s request timeout. */
    private static ClientConfig fast(String baseUrl) {
        return ClientConfig.of(baseUrl)
                .withBackoff(Duration.ofMillis(1), Duration.ofMillis(20))
                .withConnectTimeout(Duration.ofSeconds(2))
                .withRequestTimeout(Duration.ofSeconds(5));
    }

    private OpenAiClient client(ClientConfig config) {
        OpenAiClient client = new OpenAiClient(config);
        toClose.add(client);
        return client;
    }

    private OpenAiClient client(FlakyOpenAiServer server, UnaryOperator<ClientConfig> tweak) {
        return client(tweak.apply(fast(server.baseUrl())));
    }

    private OpenAiClient client(FlakyOpenAiServer server) {
        return client(server, c -> c);
    }

    private static JsonNode json(String text) throws Exception {
        return Wire.JSON.readTree(text);
    }

    @Test
    void completesAPromptWithEveryFieldSent() throws Exception {
        FlakyOpenAiServer server = server();
        OpenAiClient client = client(server);
        Completion c = client.complete(PROMPT.withMaxTokens(32).withTemperature(0.0).withTopP(0.9)
                .withStop(List.of("\n")).withSeed(7L).with("repetition_penalty", 1.1).with("logit_bias", null));

        assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
        assertThat(c.finishReason()).isEqualTo("stop");
        assertThat(c.promptTokens()).isEqualTo(FlakyOpenAiServer.PROMPT_TOKENS);
        assertThat(c.completionTokens()).isEqualTo(FlakyOpenAiServer.COMPLETION_TOKENS);
        assertThat(c.attempts()).isEqualTo(1);
        assertThat(c.latency()).isPositive();

        JsonNode body = json(server.lastBody());
        assertThat(body.get("model").asText()).isEqualTo("m");
        assertThat(body.get("prompt").asText()).isEqualTo("The capital of France is");
        assertThat(body.get("max_tokens").asInt()).isEqualTo(32);
        assertThat(body.get("temperature").asDouble()).isEqualTo(0.0);
        assertThat(body.get("top_p").asDouble()).isEqualTo(0.9);
        assertThat(body.get("stop").get(0).asText()).isEqualTo("\n");
        assertThat(body.get("seed").asLong()).isEqualTo(7);
        assertThat(body.get("repetition_penalty").asDouble()).isEqualTo(1.1);
        assertThat(body.get("logit_bias").isNull()).isTrue();
        assertThat(body.has("stream")).isFalse();
        assertThat(body.has("messages")).isFalse();

        assertThat(client.stats().requests()).isEqualTo(1);
        assertThat(client.stats().succeeded()).isEqualTo(1);
        assertThat(client.stats().retries()).isZero();
        assertThat(client.stats().inFlight()).isZero();
    }

    @Test
    void completesAChatAndLeavesUnsetFieldsOut() throws Exception {
        FlakyOpenAiServer server = server();
        Completion c = client(server).complete(CHAT);

        assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
        assertThat(c.finishReason()).isEqualTo("stop");
        assertThat(c.totalTokens()).isEqualTo(FlakyOpenAiServer.PROMPT_TOKENS + FlakyOpenAiServer.COMPLETION_TOKENS);
        JsonNode body = json(server.lastBody());
        assertThat(body.get("messages")).hasSize(2);
        assertThat(body.get("messages").get(1).get("role").asText()).isEqualTo("user");
        assertThat(body.get("messages").get(1).get("content").asText()).isEqualTo("What is the capital of France?");
        assertThat(body.has("prompt")).isFalse();
        assertThat(body.has("max_tokens")).isFalse();
        assertThat(body.has("temperature")).isFalse();
        assertThat(body.has("stop")).isFalse();
        assertThat(body.has("seed")).isFalse();
    }

    @Test
    void aBaseUrlEndingInV1IsNotDoubled() throws Exception {
        FlakyOpenAiServer server = server();
        Completion c = client(fast(server.baseUrl() + "/v1/")).complete(PROMPT);
        assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
    }

    @Test
    void missingUsageCountsAsZeroTokens() throws Exception {
        FlakyOpenAiServer server = server("--no-usage");
        Completion c = client(server).complete(PROMPT);
        assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
        assertThat(c.promptTokens()).isZero();
        assertThat(c.completionTokens()).isZero();
        Completion s = client(server).stream(CHAT, piece -> { });
        assertThat(s.text()).isEqualTo(FlakyOpenAiServer.TEXT);
        assertThat(s.completionTokens()).isZero();
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void streamsTextAsItComes(boolean chat) throws Exception {
        FlakyOpenAiServer server = server();
        List<String> pieces = new CopyOnWriteArrayList<>();
        Thread caller = Thread.currentThread();
        List<Thread> threads = new CopyOnWriteArrayList<>();
        Completion c = client(server).stream(chat ? CHAT : PROMPT, piece -> {
            pieces.add(piece);
            threads.add(Thread.currentThread());
        });

        assertThat(pieces).containsExactlyElementsOf(FlakyOpenAiServer.PIECES);
        assertThat(threads).containsOnly(caller);
        assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
        assertThat(c.finishReason()).isEqualTo("stop");
        assertThat(c.promptTokens()).isEqualTo(FlakyOpenAiServer.PROMPT_TOKENS);
        assertThat(c.completionTokens()).isEqualTo(FlakyOpenAiServer.COMPLETION_TOKENS);
        assertThat(c.attempts()).isEqualTo(1);
        JsonNode body = json(server.lastBody());
        assertThat(body.get("stream").asBoolean()).isTrue();
        assertThat(body.get("stream_options").get("include_usage").asBoolean()).isTrue();
    }

    @Test
    void a429IsRetriedAfterTheServersRetryAfter() throws Exception {
        FlakyOpenAiServer server = server("--fail-first", "1", "--fail-status", "429", "--retry-after-s", "1");
        OpenAiClient client = client(server, c -> c.withBackoff(Duration.ofMillis(1), Duration.ofSeconds(5)));
        long start = System.nanoTime();
        Completion c = client.complete(PROMPT);
        Duration took = Duration.ofNanos(System.nanoTime() - start);

        assertThat(c.attempts()).isEqualTo(2);
        assertThat(server.requests()).isEqualTo(2);
        assertThat(took).isGreaterThanOrEqualTo(Duration.ofMillis(950));   // not the 1 ms back-off
        assertThat(client.stats().retries()).isEqualTo(1);
    }

    @Test
    void retryAfterIsCappedByTheMaximumBackoff() throws Exception {
        FlakyOpenAiServer server = server("--fail-first", "1", "--fail-status", "503", "--retry-after-s", "60");
        OpenAiClient client = client(server, c -> c.withBackoff(Duration.ofMillis(1), Duration.ofMillis(100)));
        Completion c = client.complete(PROMPT);
        assertThat(c.attempts()).isEqualTo(2);
        assertThat(c.latency()).isLessThan(Duration.ofSeconds(10));
    }

    @ParameterizedTest
    @ValueSource(ints = {500, 502, 503})
    void serverErrorsAreRetried(int status) throws Exception {
        FlakyOpenAiServer server = server("--fail-first", "2", "--fail-status", Integer.toString(status));
        Completion c = client(server).complete(PROMPT);
        assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
        assertThat(c.attempts()).isEqualTo(3);
        assertThat(server.requests()).isEqualTo(3);
    }

    @Test
    void aGarbageAnswerIsRetried() throws Exception {
        FlakyOpenAiServer server = server("--garbage-first", "2");
        OpenAiClient client = client(server);
        assertThat(client.complete(CHAT).attempts()).isEqualTo(3);
        assertThat(server.requests()).isEqualTo(3);
    }

    @Test
    void aGarbageStreamIsRetried() throws Exception {
        FlakyOpenAiServer server = server("--garbage-first", "1");
        List<String> pieces = new ArrayList<>();
        Completion c = client(server).stream(PROMPT, pieces::add);
        assertThat(c.attempts()).isEqualTo(2);
        assertThat(pieces).containsExactlyElementsOf(FlakyOpenAiServer.PIECES);
    }

    @Test
    void anAnswerCutShortIsRetried() throws Exception {
        FlakyOpenAiServer server = server("--cut-first", "1");
        Completion c = client(server).complete(PROMPT);
        assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
        assertThat(c.attempts()).isEqualTo(2);
    }

    @Test
    void aHungRequestTimesOutAndIsRetried() throws Exception {
        FlakyOpenAiServer server = server("--hang-first", "1");
        OpenAiClient client = client(server, c -> c.withRequestTimeout(Duration.ofMillis(300)));
        Completion c = client.complete(PROMPT);
        assertThat(c.attempts()).isEqualTo(2);
        assertThat(c.latency()).isGreaterThanOrEqualTo(Duration.ofMillis(300));
        assertThat(server.requests()).isEqualTo(2);
    }

    @Test
    void aHungStreamTimesOutAndIsRetried() throws Exception {
        FlakyOpenAiServer server = server("--hang-first", "1");
        OpenAiClient client = client(server, c -> c.withRequestTimeout(Duration.ofMillis(300)));
        List<String> pieces = new ArrayList<>();
        Completion c = client.stream(CHAT, pieces::add);
        assertThat(c.attempts()).isEqualTo(2);
        assertThat(String.join("", pieces)).isEqualTo(FlakyOpenAiServer.TEXT);
    }

    @Test
    void aStreamCutBeforeAnyTextIsRetried() throws Exception {
        FlakyOpenAiServer server = server("--cut-first", "1", "--cut-after", "0");
        List<String> pieces = new ArrayList<>();
        Completion c = client(server).stream(CHAT, pieces::add);   // the role chunk came, no text
        assertThat(c.attempts()).isEqualTo(2);
        assertThat(pieces).containsExactlyElementsOf(FlakyOpenAiServer.PIECES);
    }

    @Test
    void aStreamCutAfterSomeTextFailsWithoutRetry() throws Exception {
        FlakyOpenAiServer server = server("--cut-first", "1", "--cut-after", "2");
        List<String> pieces = new ArrayList<>();
        OpenAiClient client = client(server);
        ClientException e = catchThrowableOfType(ClientException.class, () -> client.stream(PROMPT, pieces::add));

        assertThat(e.kind()).isEqualTo(Kind.CONNECTION);
        assertThat(e.attempts()).isEqualTo(1);
        assertThat(e.getMessage()).contains("[DONE]").contains("not retried").contains("8 characters delivered");
        assertThat(pieces).containsExactly("Paris", " is");
        assertThat(server.requests()).isEqualTo(1);
        assertThat(client.stats().failures()).isEqualTo(1);
    }

    @ParameterizedTest
    @ValueSource(ints = {400, 404, 422})
    void aRejectedRequestFailsAtOnceWithTheServersMessage(int status) throws Exception {
        FlakyOpenAiServer server = server("--fail-first", "1", "--fail-status", Integer.toString(status));
        OpenAiClient client = client(server);
        ClientException e = catchThrowableOfType(ClientException.class, () -> client.complete(PROMPT));

        assertThat(e.kind()).isEqualTo(Kind.REJECTED);
        assertThat(e.status()).isEqualTo(status);
        assertThat(e.attempts()).isEqualTo(1);
        assertThat(e.reason()).isEqualTo("fixture failure: HTTP " + status);
        assertThat(e.getMessage()).isEqualTo("POST " + server.baseUrl() + "/v1/completions: HTTP " + status
                + ": fixture failure: HTTP " + status + " (1 attempt)");
        assertThat(server.requests()).isEqualTo(1);
        assertThat(client.stats().retries()).isZero();
    }

    @Test
    void aRejectedStreamFailsAtOnceWithTheStartOfAPlainBody() throws Exception {
        FlakyOpenAiServer server = server("--fail-first", "1", "--fail-status", "404", "--plain-errors");
        OpenAiClient client = client(server);
        ClientException e = catchThrowableOfType(ClientException.class, () -> client.stream(CHAT, p -> { }));

        assertThat(e.kind()).isEqualTo(Kind.REJECTED);
        assertThat(e.status()).isEqualTo(404);
        assertThat(e.reason()).startsWith(FlakyOpenAiServer.PLAIN_ERROR).doesNotContain("END");
        assertThat(e.reason().length()).isLessThanOrEqualTo(203);
        assertThat(e.getMessage()).contains("/v1/chat/completions").doesNotContain("\n");
        assertThat(server.requests()).isEqualTo(1);
    }

    @Test
    void aSpentRetryBudgetFailsAfterMaxRetriesPlusOneAttempts() throws Exception {
        FlakyOpenAiServer server = server("--fail-first", "100", "--fail-status", "500");
        OpenAiClient client = client(server, c -> c.withMaxRetries(3));
        ClientException e = catchThrowableOfType(ClientException.class, () -> client.complete(PROMPT));

        assertThat(e.kind()).isEqualTo(Kind.SERVER_ERROR);
        assertThat(e.status()).isEqualTo(500);
        assertThat(e.attempts()).isEqualTo(4);
        assertThat(e.getMessage()).endsWith("(4 attempts)");
        assertThat(server.requests()).isEqualTo(4);
        assertThat(client.stats().retries()).isEqualTo(3);
        assertThat(client.stats().attempts()).isEqualTo(4);
        assertThat(client.stats().failures()).isEqualTo(1);
    }

    @Test
    void connectionRefusedIsRetriedThenFails() {
        int port = Fixture.freePort();
        OpenAiClient client = client(fast("http://127.0.0.1:" + port).withMaxRetries(2));
        ClientException e = catchThrowableOfType(ClientException.class, () -> client.complete(PROMPT));

        assertThat(e.kind()).isEqualTo(Kind.CONNECTION);
        assertThat(e.status()).isZero();
        assertThat(e.noAnswer()).isTrue();
        assertThat(e.attempts()).isEqualTo(3);
        assertThat(e.getMessage()).startsWith("POST http://127.0.0.1:" + port + "/v1/completions: ")
                .contains("refused");
    }

    @Test
    void aRecoveryThatFindsTheServerElsewhereLetsTheRequestSucceed() throws Exception {
        FlakyOpenAiServer server = server();
        AtomicReference<String> url = new AtomicReference<>("http://127.0.0.1:" + Fixture.freePort());
        AtomicInteger recoveries = new AtomicInteger();
        OpenAiClient client = client(fast("unused").withBaseUrl(url::get).withRecovery(cause -> {
            assertThat(cause.noAnswer()).isTrue();
            recoveries.incrementAndGet();
            url.set(server.baseUrl());   // "restarted on another port"
            return true;
        }));
        Completion c = client.complete(PROMPT);
        assertThat(c.attempts()).isEqualTo(2);
        assertThat(recoveries).hasValue(1);
    }

    @Test
    void aRecoveryThatGivesUpFailsTheRequestAtOnce() {
        AtomicInteger recoveries = new AtomicInteger();
        OpenAiClient client = client(fast("http://127.0.0.1:" + Fixture.freePort()).withRecovery(cause -> {
            recoveries.incrementAndGet();
            return false;
        }));
        ClientException e = catchThrowableOfType(ClientException.class, () -> client.complete(PROMPT));
        assertThat(e.kind()).isEqualTo(Kind.CONNECTION);
        assertThat(e.attempts()).isEqualTo(1);
        assertThat(e.getMessage()).contains("the server is gone");
        assertThat(recoveries).hasValue(1);
    }

    @Test
    void withNoRetryLeftRecoveryIsNotCalled() {
        AtomicInteger recoveries = new AtomicInteger();
        OpenAiClient client = client(fast("http://127.0.0.1:" + Fixture.freePort()).withMaxRetries(0)
                .withRecovery(cause -> recoveries.incrementAndGet() > 0));
        ClientException e = catchThrowableOfType(ClientException.class, () -> client.complete(PROMPT));
        assertThat(e.attempts()).isEqualTo(1);
        assertThat(recoveries).hasValue(0);
    }

    @Test
    void noServerUrlIsAConnectionFailureThatRecoveryCanFix() throws Exception {
        FlakyOpenAiServer server = server();
        AtomicReference<String> url = new AtomicReference<>();
        OpenAiClient client = client(fast("unused").withBaseUrl(url::get).withRecovery(cause -> {
            url.set(server.baseUrl());
            return true;
        }));
        assertThat(client.complete(CHAT).attempts()).isEqualTo(2);
    }

    @Test
    void anHttpErrorNeverCallsRecovery() throws Exception {
        FlakyOpenAiServer server = server("--fail-first", "1", "--fail-status", "500", "--garbage-first", "1");
        AtomicInteger recoveries = new AtomicInteger();
        OpenAiClient client = client(server, c -> c.withRecovery(cause -> recoveries.incrementAndGet() > 0));
        assertThat(client.complete(PROMPT).attempts()).isEqualTo(3);
        assertThat(recoveries).hasValue(0);
    }

    @Test
    void aTimeoutCallsRecovery() throws Exception {
        FlakyOpenAiServer server = server("--hang-first", "1");
        AtomicReference<ClientException> seen = new AtomicReference<>();
        // 2 s, not less: the retry must get its answer within the same timeout, and a loaded machine (load 7.5 seen)
        // can take longer than 200 ms to answer the first request of a fresh server.
        OpenAiClient client = client(server, c -> c.withRequestTimeout(Duration.ofSeconds(2)).withRecovery(cause -> {
            seen.set(cause);
            return true;
        }));
        assertThat(client.complete(PROMPT).attempts()).isEqualTo(2);
        assertThat(seen.get().kind()).isEqualTo(Kind.TIMEOUT);
        assertThat(seen.get().attempts()).isEqualTo(1);
    }

    @Test
    void neverMoreThanMaxConcurrencyRequestsInFlight() throws Exception {
        FlakyOpenAiServer server = server("--delay-ms", "50");
        OpenAiClient client = client(server, c -> c.withMaxConcurrency(4));
        List<Future<Completion>> results = new ArrayList<>();
        try (ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < 32; i++) {
                CompletionRequest r = i % 2 == 0 ? PROMPT : CHAT;
                results.add(callers.submit(() -> client.complete(r)));
            }
        }
        for (Future<Completion> f : results) {
            assertThat(f.get().text()).isEqualTo(FlakyOpenAiServer.TEXT);
        }
        assertThat(server.requests()).isEqualTo(32);
        assertThat(server.maxInFlight()).isEqualTo(4);
        assertThat(client.stats().inFlight()).isZero();
        assertThat(client.stats().succeeded()).isEqualTo(32);
    }

    @Test
    void anInterruptEndsAHungRequestAtOnce() throws Exception {
        FlakyOpenAiServer server = server("--hang-first", "1");
        OpenAiClient client = client(server, c -> c.withRequestTimeout(Duration.ofSeconds(60)));
        AtomicReference<Throwable> outcome = new AtomicReference<>();
        Thread caller = Thread.ofVirtual().start(() -> {
            try {
                client.complete(PROMPT);
            } catch (Throwable t) {
                outcome.set(t);
            }
        });
        assertThat(Poll.until(() -> server.requests() == 1, Duration.ofSeconds(5))).isTrue();
        long start = System.nanoTime();
        caller.interrupt();
        assertThat(caller.join(Duration.ofSeconds(5))).isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(2));
        assertThat(outcome.get()).isInstanceOf(InterruptedException.class);
        assertThat(client.stats().inFlight()).isZero();
        assertThat(client.stats().failures()).isZero();
    }

    @Test
    void aCallAfterCloseIsAnError() throws Exception {
        FlakyOpenAiServer server = server();
        OpenAiClient client = client(server);
        client.close();
        assertThatThrownBy(() -> client.complete(PROMPT)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void extraFieldsMayOverrideButNotStream() throws Exception {
        FlakyOpenAiServer server = server();
        client(server).complete(PROMPT.withMaxTokens(5).withExtra(Map.of("max_tokens", 9, "stream", true)));
        JsonNode body = json(server.lastBody());
        assertThat(body.get("max_tokens").asInt()).isEqualTo(9);
        assertThat(body.has("stream")).isFalse();
    }
}
