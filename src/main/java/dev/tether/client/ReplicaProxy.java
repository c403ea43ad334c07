package dev.tether.client;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * One URL in front of a pool's replicas, for a job that knows only one ({@code tether exec --replicas N}: its
 * {@code OPENAI_BASE_URL}). Each request goes to the replica with the fewest requests outstanding through this
 * proxy (ties in turn), its answer streamed back as it comes (SSE included). A replica that cannot be reached
 * before it answers is skipped for the next one; when none answers, 502 with an OpenAI-style error. It lives in
 * tether's own JVM, on loopback, and ends with it: no process of its own to outlive anybody.
 *
 * <p>Written here rather than taken from a library: what it needs is a few dozen lines over the JDK's own HTTP
 * server and client, and a proxy library (or a sidecar such as nginx) would be a dependency, or a process, for that.
 */
public final class ReplicaProxy implements AutoCloseable {
    /** Hop-by-hop headers (RFC 9110 7.6.1) and those the JDK's client or server set themselves. */
    private static final Set<String> NOT_FORWARDED = Set.of("connection", "keep-alive", "proxy-connection",
            "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length", "expect");

    private final List<String> replicas;
    private final AtomicIntegerArray outstanding;
    private final AtomicIntegerArray served;
    private final AtomicInteger turn = new AtomicInteger();
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final HttpClient http;
    private final HttpServer server;

    /** @param replicas the replicas' base URLs ({@code http://host:port}) */
    public static ReplicaProxy start(List<String> replicas) throws IOException {
        return new ReplicaProxy(replicas);
    }

    private ReplicaProxy(List<String> replicas) throws IOException {
        if (replicas.isEmpty()) {
            throw new IllegalArgumentException("no replicas");
        }
        this.replicas = List.copyOf(replicas);
        this.outstanding = new AtomicIntegerArray(replicas.size());
        this.served = new AtomicIntegerArray(replicas.size());
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10))
                .followRedirects(HttpClient.Redirect.NEVER).executor(executor).build();
        this.server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 512);
        server.setExecutor(executor);
        server.createContext("/", this::forward);
        server.start();
    }

    /** {@code http://127.0.0.1:PORT}: the pool's one URL. */
    public String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** Requests replica {@code i} answered (of any status), for tests and summaries. */
    public int served(int i) {
        return served.get(i);
    }

    private int pick(boolean[] tried) {
        int start = Math.floorMod(turn.getAndIncrement(), replicas.size());
        int best = -1;
        for (int k = 0; k < replicas.size(); k++) {
            int i = (start + k) % replicas.size();
            if (!tried[i] && (best < 0 || outstanding.get(i) < outstanding.get(best))) {
                best = i;
            }
        }
        return best;
    }

    private void forward(HttpExchange exchange) throws IOException {
        try (exchange) {
            byte[] body = exchange.getRequestBody().readAllBytes();
            String target = exchange.getRequestURI().getRawPath()
                    + (exchange.getRequestURI().getRawQuery() == null ? "" : "?" + exchange.getRequestURI().getRawQuery());
            boolean[] tried = new boolean[replicas.size()];
            String lastFailure = "";
            for (int attempt = 0; attempt < replicas.size(); attempt++) {
                int i = pick(tried);
                tried[i] = true;
                outstanding.incrementAndGet(i);
                try {
                    HttpResponse<InputStream> response;
                    try {
                        response = http.send(request(exchange, replicas.get(i) + target, body),
                                HttpResponse.BodyHandlers.ofInputStream());
                    } catch (IOException e) {
                        lastFailure = replicas.get(i) + ": " + AttemptFailure.describe(e);
                        continue;   // not reached, nothing answered: the next replica
                    }
                    served.incrementAndGet(i);
                    relay(response, exchange);
                    return;
                } finally {
                    outstanding.decrementAndGet(i);
                }
            }
            byte[] error = ("{\"error\":{\"message\":\"tether: no replica answered (" + lastFailure.replace("\"", "'")
                    + ")\",\"type\":\"tether_proxy_error\"}}").getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(502, error.length);
            exchange.getResponseBody().write(error);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static HttpRequest request(HttpExchange exchange, String url, byte[] body) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url))
                .method(exchange.getRequestMethod(), body.length == 0 && !exchange.getRequestMethod().equals("POST")
                        ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        for (var header : exchange.getRequestHeaders().entrySet()) {
            if (!NOT_FORWARDED.contains(header.getKey().toLowerCase(Locale.ROOT))) {
                header.getValue().forEach(v -> b.header(header.getKey(), v));
            }
        }
        return b.build();
    }

    /** Status, headers and body as they come: each chunk is flushed at once, so a stream stays a stream. */
    private static void relay(HttpResponse<InputStream> response, HttpExchange exchange) throws IOException {
        Headers out = exchange.getResponseHeaders();
        response.headers().map().forEach((name, values) -> {
            if (!NOT_FORWARDED.contains(name.toLowerCase(Locale.ROOT)) && !name.startsWith(":")) {
                out.put(name, values);
            }
        });
        long length = response.headers().firstValueAsLong("Content-Length").orElse(-1);
        try (InputStream in = response.body()) {
            exchange.sendResponseHeaders(response.statusCode(), length == 0 ? -1 : length > 0 ? length : 0);
            OutputStream body = exchange.getResponseBody();
            byte[] buffer = new byte[8192];
            int n;
            while ((n = in.read(buffer)) >= 0) {
                body.write(buffer, 0, n);
                body.flush();
            }
        }
    }

    @Override
    public void close() {
        server.stop(0);
        http.shutdownNow();
        executor.shutdownNow();
    }
}
