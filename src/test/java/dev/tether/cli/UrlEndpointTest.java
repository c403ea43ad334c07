package dev.tether.cli;

import static dev.tether.cli.TetherHomes.leases;
import static dev.tether.cli.TetherHomes.processesOf;
import static dev.tether.cli.TetherHomes.status;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.fixtures.FlakyOpenAiServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --url} (issue 11): run and exec against an OpenAI-compatible server the test starts, not tether. tether
 * (a separate JVM) starts and stops nothing: the server is still up afterwards and the home holds no lease.
 */
class UrlEndpointTest {
    /** The key is unset for tether unless a test gives one (an empty OPENAI_API_KEY counts as none). */
    private static final Map<String, String> NO_KEY = Map.of("OPENAI_API_KEY", "");

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path home() {
        return tethers.home();
    }

    private Path prompts() throws Exception {
        return Files.writeString(dir.resolve("prompts.jsonl"),
                "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"prompt\":\"b\"}\n{\"id\":3,\"prompt\":\"c\"}\n");
    }

    private TetherCli.Result run(Map<String, String> env, String... args) throws Exception {
        TetherCli.Result r = TetherCli.run(home(), env, args);
        return r;
    }

    private void assertNothingManaged() throws Exception {
        assertThat(leases(home())).isEmpty();
        assertThat(processesOf(home())).isEmpty();
        TetherCli.Result ps = run(NO_KEY, "ps");
        assertThat(ps.out()).contains("No managed servers.");
    }

    @Test
    void runAnswersEveryRecordFromTheEndpointAndLeavesItRunning() throws Exception {
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0")) {
            Path output = dir.resolve("gens.jsonl");
            TetherCli.Result r = run(NO_KEY, "run", "--task", "prompts", "--model", "m", "--url", server.baseUrl(),
                    "--input", prompts().toString(), "--output", output.toString());
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
            assertThat(r.out()).contains("Using endpoint " + server.baseUrl()
                    + " (not managed by tether: nothing is started or stopped)").doesNotContain("Starting server");
            List<JsonNode> records = TetherHomes.jsonLines(output);
            assertThat(records).hasSize(3).allSatisfy(rec -> {
                assertThat(rec.has("error")).isFalse();
                assertThat(rec.get("generation").asText()).isEqualTo(FlakyOpenAiServer.TEXT);
                assertThat(rec.get("produced_by").get("model").asText()).isEqualTo("m");
            });
            assertThat(status(server.baseUrl() + "/health")).as("the endpoint outlives tether").isEqualTo(200);
            assertNothingManaged();

            // The /v1 form names the same server; a re-run resumes (nothing left to send).
            TetherCli.Result again = run(NO_KEY, "run", "--task", "prompts", "--model", "m", "--url", server.baseUrl() + "/v1/",
                    "--input", prompts().toString(), "--output", output.toString());
            assertThat(again.exitCode()).as("stdout:\n%s\nstderr:\n%s", again.out(), again.err()).isZero();
            assertThat(again.out()).contains("Using endpoint " + server.baseUrl() + " (");
            assertThat(TetherHomes.jsonLines(output)).hasSize(3);
        }
    }

    @Test
    void theApiKeyIsSentAsABearerTokenAndAMissingOneGivesFailureRecords() throws Exception {
        String key = "sk-test-7f3a";
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0", "--require-key", key)) {
            Path output = dir.resolve("gens.jsonl");
            TetherCli.Result missing = run(NO_KEY, "run", "--task", "prompts", "--model", "m", "--url", server.baseUrl(),
                    "--input", prompts().toString(), "--output", output.toString(), "--retries", "1");
            assertThat(missing.exitCode()).as("stdout:\n%s\nstderr:\n%s", missing.out(), missing.err()).isEqualTo(1);
            assertThat(missing.err()).contains("3 records failed").contains("the endpoint answered HTTP 401: it needs an API key");
            assertThat(missing.err().strip().lines()).hasSize(1);
            assertThat(TetherHomes.jsonLines(output)).hasSize(3).allSatisfy(rec ->
                    assertThat(rec.get("error").toString()).contains("401"));

            TetherCli.Result withOption = run(NO_KEY, "run", "--task", "prompts", "--model", "m", "--url", server.baseUrl(),
                    "--api-key", key, "--input", prompts().toString(), "--output", output.toString());
            assertThat(withOption.exitCode()).as("stdout:\n%s\nstderr:\n%s", withOption.out(), withOption.err()).isZero();
            assertThat(withOption.out() + withOption.err()).doesNotContain(key);
            assertThat(TetherHomes.jsonLines(output)).hasSize(3).allSatisfy(rec -> assertThat(rec.has("error")).isFalse());

            Path other = dir.resolve("other.jsonl");
            TetherCli.Result fromEnv = run(Map.of("OPENAI_API_KEY", key), "run", "--task", "prompts", "--model", "m",
                    "--url", server.baseUrl(), "--input", prompts().toString(), "--output", other.toString());
            assertThat(fromEnv.exitCode()).as("stdout:\n%s\nstderr:\n%s", fromEnv.out(), fromEnv.err()).isZero();
            assertThat(fromEnv.out() + fromEnv.err()).doesNotContain(key);
            assertNothingManaged();
        }
    }

    @Test
    void aDeadEndpointGivesFailureRecordsAndNothingIsRestarted() throws Exception {
        String url;
        try (FlakyOpenAiServer gone = FlakyOpenAiServer.start("--port", "0")) {
            url = gone.baseUrl();
        }
        Path output = dir.resolve("gens.jsonl");
        TetherCli.Result r = run(NO_KEY, "run", "--task", "prompts", "--model", "m", "--url", url,
                "--input", prompts().toString(), "--output", output.toString(), "--retries", "1");
        assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isEqualTo(1);
        assertThat(r.err()).doesNotContain("restart");
        assertThat(TetherHomes.jsonLines(output)).hasSize(3).allSatisfy(rec -> {
            assertThat(rec.get("error").get("kind").asText()).isEqualTo("connection");
            assertThat(rec.get("error").get("attempts").asInt()).isEqualTo(2);
        });
        assertNothingManaged();
    }

    @Test
    void serverOptionsAreRefusedWithUrl() throws Exception {
        TetherCli.Result r = run(NO_KEY, "run", "--task", "prompts", "--model", "m", "--url", "http://127.0.0.1:9",
                "--command", "python3 -m http.server {port}", "--input", prompts().toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err().strip().lines()).hasSize(1);
        assertThat(r.err()).contains("--command").contains("--url");

        TetherCli.Result bad = run(NO_KEY, "run", "--task", "prompts", "--model", "m", "--url", "host:8000",
                "--input", prompts().toString());
        assertThat(bad.exitCode()).isEqualTo(2);
        assertThat(bad.err().strip().lines()).hasSize(1);

        TetherCli.Result exec = run(NO_KEY, "exec", "--url", "http://127.0.0.1:9", "--port", "8001", "--", "true");
        assertThat(exec.exitCode()).isEqualTo(2);
        assertThat(exec.err().strip().lines()).hasSize(1);
        assertNothingManaged();
    }

    @Test
    void execRunsTheJobAgainstTheEndpointAndStartsNoServer() throws Exception {
        try (FlakyOpenAiServer server = FlakyOpenAiServer.start("--port", "0")) {
            TetherCli.Result r = run(NO_KEY, "exec", "--url", server.baseUrl() + "/v1", "--model", "m", "--",
                    "sh", "-c", "echo $OPENAI_BASE_URL $TETHER_URL $TETHER_PORT $TETHER_MODEL {port}");
            assertThat(r.exitCode()).as("stdout:\n%s\nstderr:\n%s", r.out(), r.err()).isZero();
            assertThat(r.out().strip()).isEqualTo(server.baseUrl() + "/v1 " + server.baseUrl() + " " + server.port()
                    + " m " + server.port());
            assertThat(r.err()).contains("not managed by tether").doesNotContain("Starting server");
            assertThat(status(server.baseUrl() + "/health")).isEqualTo(200);
            assertNothingManaged();

            TetherCli.Result failing = run(NO_KEY, "exec", "--url", server.baseUrl(), "--", "sh", "-c", "exit 7");
            assertThat(failing.exitCode()).as("the job's exit code").isEqualTo(7);
        }
    }
}
