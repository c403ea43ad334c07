package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import dev.tether.fixtures.Fixture;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The readiness question alone: 2xx is ready; 503 (loading), other codes and no answer are not. */
class ReadinessTest {
    private HttpServer server;
    private final AtomicInteger status = new AtomicInteger(503);

    @BeforeEach
    void listen() throws Exception {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 10);
        server.createContext("/health", exchange -> {
            try (exchange) {
                exchange.sendResponseHeaders(status.get(), -1);
            }
        });
        server.start();
    }

    @AfterEach
    void close() {
        server.stop(0);
    }

    private String url() {
        return ServerSpec.baseUrl("127.0.0.1", server.getAddress().getPort()) + "/health";
    }

    @Test
    void onlyA2xxAnswerIsReady() {
        Readiness check = Readiness.http(url());
        assertThat(check.describe()).contains(url()).contains("2xx");
        for (int code : new int[] {503, 500, 404, 301}) {
            status.set(code);
            assertThat(check.isReady()).as("HTTP %d", code).isFalse();
        }
        status.set(200);
        assertThat(check.isReady()).isTrue();
        status.set(204);
        assertThat(check.isReady()).isTrue();
    }

    @Test
    void noListenerIsNotReady() {
        int port = Fixture.freePort();
        assertThat(Readiness.http(ServerSpec.baseUrl("127.0.0.1", port) + "/health").isReady()).isFalse();
        assertThat(Readiness.listening(port).isReady()).isFalse();
        assertThat(Readiness.listening(server.getAddress().getPort()).isReady()).isTrue();
    }

    @Test
    void aWildcardBindIsCheckedOnLoopback() {
        assertThat(ServerSpec.baseUrl("0.0.0.0", 8000)).isEqualTo("http://127.0.0.1:8000");
        assertThat(ServerSpec.baseUrl("::", 8000)).isEqualTo("http://[::1]:8000");
        assertThat(ServerSpec.baseUrl("::1", 8000)).isEqualTo("http://[::1]:8000");
        assertThat(ServerSpec.baseUrl("example.org", 8000)).isEqualTo("http://example.org:8000");
    }
}
