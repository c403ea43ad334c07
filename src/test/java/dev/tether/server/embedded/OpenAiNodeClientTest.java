package dev.tether.server.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The embedded engine through the official {@code openai} npm client, as real clients use it
 * ({@code src/test/node/openai-client.mjs} holds the checks). The client is installed once into
 * {@code target/node-openai} with npm; without node or npm (or the registry) the test is skipped, saying why.
 */
class OpenAiNodeClientTest {
    static final String CLIENT_VERSION = "4.104.0";
    private static final Path DIR = Path.of("target", "node-openai");

    @TempDir
    Path home;

    private static int run(List<String> command, Path dir, Path log, java.util.Map<String, String> env, int minutes)
            throws IOException, InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        builder.environment().putAll(env);
        Process process = builder.start();
        if (!process.waitFor(minutes, TimeUnit.MINUTES)) {
            process.destroyForcibly().waitFor();
            throw new AssertionError(String.join(" ", command) + " did not finish in " + minutes + " minutes:\n" + Files.readString(log));
        }
        return process.exitValue();
    }

    private static boolean onPath(String program) {
        return Stream.of(System.getenv().getOrDefault("PATH", "").split(":"))
                .anyMatch(d -> !d.isEmpty() && Files.isExecutable(Path.of(d, program)));
    }

    private static void installClient() throws Exception {
        Assumptions.assumeTrue(onPath("node") && onPath("npm"), "node and npm are needed for the openai npm client");
        if (Files.isRegularFile(DIR.resolve("node_modules/openai/package.json"))
                && Files.readString(DIR.resolve("node_modules/openai/package.json")).contains("\"version\": \"" + CLIENT_VERSION + "\"")) {
            return;
        }
        Files.createDirectories(DIR);
        Files.writeString(DIR.resolve("package.json"), "{\"private\": true, \"type\": \"module\"}\n");
        Path log = DIR.resolve("npm-install.log");
        int code = run(List.of("npm", "install", "--no-audit", "--no-fund", "--no-save", "openai@" + CLIENT_VERSION), DIR, log,
                java.util.Map.of(), 5);
        Assumptions.assumeTrue(code == 0, () -> "npm could not install openai@" + CLIENT_VERSION + " (exit " + code + "):\n"
                + readQuietly(log));
    }

    private static String readQuietly(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "";
        }
    }

    @Test
    void theOfficialOpenAiClientWorksAgainstTheEngine() throws Exception {
        installClient();
        Files.copy(Path.of("src", "test", "node", "openai-client.mjs"), DIR.resolve("openai-client.mjs"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (ServerManager manager = new ServerManager(new TetherHome(home), ServerEvents.NONE)) {
            var server = manager.start(new ServerSpec("tiny", Profiles.builtIns().find("embedded").orElseThrow(),
                    "127.0.0.1", ServerSpec.AUTO_PORT, Duration.ofSeconds(5)));
            Path embeddingModel = Files.write(home.resolve("tiny-mean.gguf"), TinyModel.bytes(java.util.Map.of("llama.pooling_type", 1)));
            var embedder = manager.start(new ServerSpec(embeddingModel.toString(), Profiles.builtIns().find("embedded").orElseThrow(),
                    "127.0.0.1", ServerSpec.AUTO_PORT, Duration.ofSeconds(5)));
            Path log = home.resolve("node.log");
            int code = run(List.of("node", "openai-client.mjs"), DIR, log, java.util.Map.of(
                    "OPENAI_BASE_URL", server.baseUrl() + "/v1", "OPENAI_CLIENT_VERSION", CLIENT_VERSION,
                    "OPENAI_EMBED_BASE_URL", embedder.baseUrl() + "/v1", "OPENAI_EMBED_MODEL", embeddingModel.toString()), 3);
            String output = Files.readString(log);
            assertThat(code).as(output).isZero();
            assertThat(output).contains("10 checks passed");
        }
    }
}
