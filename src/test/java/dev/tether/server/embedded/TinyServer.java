package dev.tether.server.embedded;

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
import java.nio.file.Path;
import java.time.Duration;

/**
 * The embedded engine serving {@code tiny}, started through ServerManager as users get it (a free port, a home of
 * the test's own), with the plain HTTP calls the engine's tests make. Closing it stops the server's tree.
 */
final class TinyServer implements AutoCloseable {
    final ServerManager manager;
    final ServerHandle server;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    private TinyServer(ServerManager manager, ServerHandle server) {
        this.manager = manager;
        this.server = server;
    }

    static TinyServer start(Path home) throws Exception {
        ServerManager manager = new ServerManager(new TetherHome(home), ServerEvents.NONE);
        try {
            return new TinyServer(manager, manager.start(new ServerSpec("tiny",
                    Profiles.builtIns().find("embedded").orElseThrow(), "127.0.0.1", ServerSpec.AUTO_PORT,
                    Duration.ofSeconds(5))));
        } catch (Exception | Error e) {
            manager.close();
            throw e;
        }
    }

    /** POST of a JSON text to a path of the server. */
    HttpResponse<String> post(String path, String json) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + path)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Override
    public void close() {
        manager.close();
    }
}
