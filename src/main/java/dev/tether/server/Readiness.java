package dev.tether.server;

import dev.tether.proc.PortListeners;
import java.net.URI;
import java.time.Duration;

/**
 * "Is it ready?" as one narrow question (Testcontainers' WaitStrategy): the caller polls it while
 * also checking that the server is still alive, which is a separate question.
 */
public interface Readiness {
    boolean isReady();

    String describe();

    /**
     * Ready when {@code GET url} answers 2xx (vLLM and llama.cpp answer 503 while loading).
     *
     * <p>One plain HTTP/1.1 request per check on a fresh connection, status line only: the JDK's
     * HttpClient costs tens of milliseconds to set up in a fresh JVM (its selector thread, TLS classes),
     * which the user would wait for between the server's first healthy answer and {@code Ready:}.
     * Local servers, plain HTTP: that is all a health check needs.
     */
    static Readiness http(String url) {
        return new HealthProbe(URI.create(url), Duration.ofSeconds(2), Duration.ofSeconds(5));
    }

    /** Ready when something listens on the port (for servers without a health endpoint). */
    static Readiness listening(int port) {
        return new Readiness() {
            @Override
            public boolean isReady() {
                return PortListeners.isListening(port);
            }

            @Override
            public String describe() {
                return "port " + port + " listens";
            }
        };
    }
}
