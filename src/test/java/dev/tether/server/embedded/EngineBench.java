package dev.tether.server.embedded;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Issue 4's measures, in one run on the tiny model: generation tokens/s in-process through the binding
 * versus through the HTTP server (the server's cost), and requests/s at concurrency 1, 4 and 16.
 * Run with {@code bench/run engine [rounds]}.
 */
public final class EngineBench {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int TOKENS = 256;

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 10;
        Path home = Files.createTempDirectory("tether-engine-bench");
        TetherHome tetherHome = new TetherHome(home);
        Path model = TinyModel.ensure(tetherHome.ensure().models());
        NativeLibrary.prepare(home.resolve("native"));
        int threads = Runtime.getRuntime().availableProcessors();

        double inProcess;
        try (Engine engine = new Engine(model, "tiny", 4096, 4, threads)) {
            Engine.Request request = new Engine.Request("The quick brown fox", TOKENS, 0.8f, 1f, List.of(), 1);
            engine.generate(request, t -> { });   // warm-up
            long tokens = 0;
            long t0 = System.nanoTime();
            for (int i = 0; i < rounds; i++) {
                tokens += engine.generate(request, t -> { }).completionTokens();
            }
            inProcess = tokens / ((System.nanoTime() - t0) / 1e9);
        }

        try (ServerManager manager = new ServerManager(tetherHome, ServerEvents.NONE);
             ServerHandle server = manager.start(new ServerSpec("tiny", Profiles.builtIns().find("embedded").orElseThrow(),
                     "127.0.0.1", ServerSpec.AUTO_PORT, Duration.ofSeconds(5)))) {
            HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            URI uri = URI.create(server.baseUrl() + "/v1/completions");
            String body = JSON.writeValueAsString(Map.of("model", "tiny", "prompt", "The quick brown fox",
                    "max_tokens", TOKENS, "temperature", 0.8, "seed", 1));
            send(http, uri, body);   // warm-up
            long tokens = 0;
            long t0 = System.nanoTime();
            for (int i = 0; i < rounds; i++) {
                tokens += send(http, uri, body).get("usage").get("completion_tokens").asLong();
            }
            double overHttp = tokens / ((System.nanoTime() - t0) / 1e9);
            System.out.printf("generation, %d tokens x %d rounds, one request at a time:%n", TOKENS, rounds);
            System.out.printf("  in-process (binding)  %8.0f tokens/s%n", inProcess);
            System.out.printf("  HTTP server           %8.0f tokens/s   (server cost %.1f %%)%n", overHttp,
                    100 * (1 - overHttp / inProcess));

            String small = JSON.writeValueAsString(Map.of("model", "tiny", "prompt", "Hello", "max_tokens", 32));
            System.out.println("requests/s, 32-token completions, 4 llama.cpp slots:");
            for (int concurrency : new int[] {1, 4, 16}) {
                int requests = 64;
                long start = System.nanoTime();
                try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
                    var gate = new java.util.concurrent.Semaphore(concurrency);
                    List<Future<JsonNode>> done = new ArrayList<>();
                    for (int i = 0; i < requests; i++) {
                        done.add(pool.submit(() -> {
                            gate.acquire();
                            try {
                                return send(http, uri, small);
                            } finally {
                                gate.release();
                            }
                        }));
                    }
                    for (Future<JsonNode> f : done) {
                        f.get();
                    }
                }
                System.out.printf("  concurrency %2d  %7.1f requests/s%n", concurrency, requests / ((System.nanoTime() - start) / 1e9));
            }
        }
        // The binding leaves a non-daemon native thread behind after LlamaModel.close(): end the JVM explicitly.
        System.exit(0);
    }

    private static JsonNode send(HttpClient http, URI uri, String body) throws Exception {
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(uri).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IllegalStateException(response.statusCode() + " " + response.body());
        }
        return JSON.readTree(response.body());
    }
}
