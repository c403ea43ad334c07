package dev.tether.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FlakyOpenAiServer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A client over several {@link Endpoints} (a pool's replicas), against real servers on real sockets: requests spread
 * by load, each endpoint's own recovery, a dropped endpoint's requests moved to the others, none left = failure.
 */
class EndpointsTest {
    private static final CompletionRequest PROMPT = CompletionRequest.prompt("m", "The capital of France is");
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

    /** A fixed pool; {@code urls[i] == null} means endpoint i is gone (dropped). */
    private static final class Pool implements Endpoints {
        final String[] urls;
        final ServerRecovery[] hooks;

        Pool(String[] urls, ServerRecovery[] hooks) {
            this.urls = urls;
            this.hooks = hooks;
        }

        @Override
        public int count() {
            return urls.length;
        }

        @Override
        public synchronized String baseUrl(int i) {
            return urls[i];
        }

        synchronized void drop(int i) {
            urls[i] = null;
        }

        @Override
        public ServerRecovery recovery(int i) {
            return hooks[i];
        }
    }

    private OpenAiClient client(Endpoints endpoints, int concurrency) {
        OpenAiClient client = new OpenAiClient(ClientConfig.of(endpoints).withMaxConcurrency(concurrency)
                .withBackoff(Duration.ofMillis(1), Duration.ofMillis(20)).withConnectTimeout(Duration.ofSeconds(2))
                .withRequestTimeout(Duration.ofSeconds(30)));
        toClose.add(client);
        return client;
    }

    private static void completeAll(OpenAiClient client, int n) throws Exception {
        try (ExecutorService callers = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Completion>> done = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                done.add(callers.submit(() -> client.complete(PROMPT)));
            }
            for (Future<Completion> f : done) {
                assertThat(f.get().text()).isEqualTo(FlakyOpenAiServer.TEXT);
            }
        }
    }

    @Test
    void requestsAreSpreadOverEveryEndpointByLoad() throws Exception {
        FlakyOpenAiServer a = server("--delay-ms", "30");
        FlakyOpenAiServer b = server("--delay-ms", "30");
        FlakyOpenAiServer c = server("--delay-ms", "30");
        OpenAiClient client = client(new Pool(new String[] {a.baseUrl(), b.baseUrl(), c.baseUrl()},
                new ServerRecovery[3]), 6);

        completeAll(client, 60);

        // Least outstanding with 6 in flight over 3: each endpoint carries about 2 at a time, so about a third each.
        assertThat(List.of(a.requests(), b.requests(), c.requests())).allSatisfy(r -> assertThat(r).isBetween(10, 30));
        assertThat(client.stats().answeredBy(0) + client.stats().answeredBy(1) + client.stats().answeredBy(2)).isEqualTo(60);
    }

    @Test
    void aDroppedEndpointsRequestsGoToTheOthersAndOnlyItsOwnRecoveryIsAsked() throws Exception {
        FlakyOpenAiServer live = server("--delay-ms", "10");
        String dead = "http://127.0.0.1:" + Fixture.freePort();   // nothing listens: connection refused
        AtomicInteger deadRecoveries = new AtomicInteger();
        AtomicInteger liveRecoveries = new AtomicInteger();
        Pool[] pool = new Pool[1];
        pool[0] = new Pool(new String[] {dead, live.baseUrl()}, new ServerRecovery[] {
                cause -> {
                    deadRecoveries.incrementAndGet();
                    pool[0].drop(0);   // cannot come back: dropped
                    return false;
                },
                cause -> liveRecoveries.incrementAndGet() > 0});
        OpenAiClient client = client(pool[0], 4);

        completeAll(client, 20);

        assertThat(deadRecoveries.get()).as("single flight per endpoint: one recovery decided for all").isEqualTo(1);
        assertThat(liveRecoveries.get()).isZero();
        assertThat(live.requests()).isEqualTo(20);
        assertThat(client.stats().failures()).isZero();
    }

    @Test
    void withEveryEndpointGoneARequestFailsAtOnceSayingSo() throws Exception {
        AtomicBoolean asked = new AtomicBoolean();
        Pool pool = new Pool(new String[] {null, null}, new ServerRecovery[] {cause -> asked.getAndSet(true), null});
        OpenAiClient client = client(pool, 2);

        assertThatThrownBy(() -> client.complete(PROMPT)).isInstanceOf(ClientException.class)
                .hasMessageContaining("every replica is gone");
        assertThat(asked.get()).as("nothing to recover").isFalse();
        assertThat(client.stats().attempts()).isEqualTo(1);
    }
}
