package dev.tether.server;

import dev.tether.proc.PortListeners;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * "Is it ready?" as one narrow question (Testcontainers' WaitStrategy): the caller polls it while
 * also checking that the server is still alive, which is a separate question.
 */
public interface Readiness {
    boolean isReady();

    String describe();

    /** Ready when {@code GET url} answers 2xx (vLLM and llama.cpp answer 503 while loading). */
    static Readiness http(String url) {
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2))
                .version(HttpClient.Version.HTTP_1_1).build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build();
        return new Readiness() {
            @Override
            public boolean isReady() {
                try {
                    int status = client.send(request, HttpResponse.BodyHandlers.discarding()).statusCode();
                    return status >= 200 && status < 300;
                } catch (IOException e) {
                    return false;
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }

            @Override
            public String describe() {
                return "GET " + url + " answers 2xx";
            }
        };
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
