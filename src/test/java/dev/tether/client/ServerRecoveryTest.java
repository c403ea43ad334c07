package dev.tether.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tether.client.ClientException.Kind;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FlakyOpenAiServer;
import java.io.File;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Recovery as the pipeline will use it: the server is not there (refused), the hook starts one — a
 * real process, {@link FlakyOpenAiServer} — and the requests carry on. Many callers fail at once and
 * the client's single-flight wrapper makes that one start, not one per caller.
 */
class ServerRecoveryTest {
    private static final CompletionRequest PROMPT = CompletionRequest.prompt("m", "The capital of France is");

    @TempDir
    Path dir;

    private final List<Process> processes = new ArrayList<>();

    @AfterEach
    void stopServers() throws InterruptedException {
        for (Process p : processes) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /** Starts the fixture on {@code port} and waits for its ready line (a blocking "restart"). */
    private synchronized void startServer(int port) {
        Path log = dir.resolve("server-" + processes.size() + ".log");
        try {
            Process p = new ProcessBuilder(Fixture.command(FlakyOpenAiServer.class, "--port", Integer.toString(port)))
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .start();
            processes.add(p);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        Fixture.awaitReady(log, FlakyOpenAiServer.class, 1, Duration.ofSeconds(20));
    }

    @Test
    void refusedRequestsRecoverThroughOneServerStart() throws Exception {
        int port = Fixture.freePort();
        AtomicInteger recoveries = new AtomicInteger();
        ClientConfig config = ClientConfig.of("http://127.0.0.1:" + port)
                .withBackoff(Duration.ofMillis(1), Duration.ofMillis(20))
                .withRequestTimeout(Duration.ofSeconds(5))
                .withMaxConcurrency(4)
                .withRecovery(cause -> {
                    assertThat(cause.kind()).isEqualTo(Kind.CONNECTION);
                    recoveries.incrementAndGet();
                    startServer(port);
                    return true;
                });
        List<Future<Completion>> results = new ArrayList<>();
        try (OpenAiClient client = new OpenAiClient(config)) {
            try (ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
                for (int i = 0; i < 8; i++) {
                    results.add(callers.submit(() -> client.complete(PROMPT)));
                }
            }
            for (Future<Completion> f : results) {
                Completion c = f.get();
                assertThat(c.text()).isEqualTo(FlakyOpenAiServer.TEXT);
                assertThat(c.attempts()).isEqualTo(2);
            }
            assertThat(client.stats().retries()).isEqualTo(8);
            assertThat(client.stats().failures()).isZero();
        }
        assertThat(recoveries).hasValue(1);
        assertThat(processes).hasSize(1);
    }

    /**
     * A server that takes requests and answers none: after the hang timeout (not the request timeout) the
     * client asks the hook whether it hangs; the hook "restarts" it (here: closes it), and the request fails
     * over to recovery. No hang check while nothing is in flight.
     */
    @Test
    void requestsWithNoAnswerForTheHangTimeoutAskTheHook() throws Exception {
        AtomicInteger hangChecks = new AtomicInteger();
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--hang-first", "1000")) {
            ClientConfig config = ClientConfig.of(server.baseUrl())
                    .withRequestTimeout(Duration.ofMinutes(5))
                    .withMaxRetries(1)
                    .withBackoff(Duration.ofMillis(1), Duration.ofMillis(20))
                    .withHangTimeout(Duration.ofMillis(300))
                    .withRecovery(new ServerRecovery() {
                        @Override
                        public boolean recover(ClientException cause) {
                            return false;   // gone for good
                        }

                        @Override
                        public void hung(Duration silence) {
                            assertThat(silence).isGreaterThanOrEqualTo(Duration.ofMillis(300));
                            hangChecks.incrementAndGet();
                            server.close();
                        }
                    });
            try (OpenAiClient client = new OpenAiClient(config)) {
                assertThatThrownBy(() -> client.complete(PROMPT)).isInstanceOf(ClientException.class)
                        .hasMessageContaining("recovery gave up");
                assertThat(hangChecks).hasValue(1);
            }
        }
    }

    @Test
    void aFailureOlderThanTheLastRecoveryIsNotRecoveredAgain() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        ServerRecovery once = ServerRecovery.singleFlight(cause -> calls.incrementAndGet() > 0);
        long before = System.nanoTime();
        ClientException first = new ClientException(Kind.CONNECTION, 0, 1, "u", "refused", null, before);
        ClientException stale = new ClientException(Kind.CONNECTION, 0, 1, "u", "refused", null, before + 1);
        assertThat(once.recover(first)).isTrue();
        assertThat(once.recover(stale)).isTrue();
        assertThat(calls).hasValue(1);
        ClientException fresh = new ClientException(Kind.CONNECTION, 0, 1, "u", "refused", null);   // now
        assertThat(once.recover(fresh)).isTrue();
        assertThat(calls).hasValue(2);
        assertThat(ServerRecovery.singleFlight(once)).isSameAs(once);
    }
}
