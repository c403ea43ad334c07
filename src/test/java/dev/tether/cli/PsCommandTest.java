package dev.tether.cli;

import static dev.tether.cli.TetherHomes.healthServer;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.fixtures.Fixture;
import dev.tether.proc.Member;
import dev.tether.proc.ProcessTree;
import dev.tether.server.Lease;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/** {@code tether ps [--json]}: what tether manages, for people and for scripts. */
class PsCommandTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path home() {
        return dir.resolve("home");
    }

    @Test
    void noServersIsSaidPlainly() throws Exception {
        var text = TetherCli.run(home(), "ps");
        assertThat(text.exitCode()).isZero();
        assertThat(text.out().strip()).isEqualTo("No managed servers.");
        var json = TetherCli.run(home(), "ps", "--json");
        assertThat(json.exitCode()).isZero();
        assertThat(new ObjectMapper().readTree(json.out()).isArray()).isTrue();
        assertThat(new ObjectMapper().readTree(json.out())).isEmpty();
    }

    @Test
    void aRunningServerIsListedWithIdPortPidsOwnerAndState() throws Exception {
        int port = Fixture.freePort();
        long me = ProcessHandle.current().pid();
        try (ServerManager owner = new ServerManager(new TetherHome(home()), ServerEvents.NONE);
             ServerHandle server = owner.start(new ServerSpec("fixture-model",
                     Profiles.command(healthServer(), "/health"), "127.0.0.1", port, Duration.ofSeconds(5)))) {
            Lease lease = server.lease();
            List<Integer> pids = new ProcessTree(lease.membership()).members().stream().map(Member::pid).toList();

            var text = TetherCli.run(home(), "ps");
            assertThat(text.exitCode()).as(text.err()).isZero();
            List<String> lines = text.out().lines().toList();
            assertThat(lines).hasSize(2);
            assertThat(lines.get(0)).contains("ID", "MODEL", "PORT", "STATE", "OWNER", "UPTIME", "PIDS");
            assertThat(lines.get(1)).contains(lease.id(), "fixture-model", String.valueOf(port), "ready",
                    "tether pid " + me, String.valueOf(lease.server().pid()));

            var json = TetherCli.run(home(), "ps", "--json");
            assertThat(json.exitCode()).as(json.err()).isZero();
            JsonNode rows = new ObjectMapper().readTree(json.out());
            assertThat(rows).hasSize(1);
            JsonNode row = rows.get(0);
            assertThat(row.get("id").asText()).isEqualTo(lease.id());
            assertThat(row.get("model").asText()).isEqualTo("fixture-model");
            assertThat(row.get("profile").asText()).isEqualTo("command");
            assertThat(row.get("port").asInt()).isEqualTo(port);
            assertThat(row.get("url").asText()).isEqualTo("http://127.0.0.1:" + port);
            assertThat(row.get("state").asText()).isEqualTo("ready");
            assertThat(row.get("ownerPid").asLong()).isEqualTo(me);
            assertThat(row.get("owner").asText()).isEqualTo("tether pid " + me);
            assertThat(row.get("serverPid").asInt()).isEqualTo(lease.server().pid());
            List<Integer> listed = new ArrayList<>();
            assertThat(row.get("pids").isArray()).as("pids is an array of numbers").isTrue();
            for (JsonNode pid : row.get("pids")) {
                assertThat(pid.isInt()).as("pid %s is a number", pid).isTrue();
                listed.add(pid.asInt());
            }
            assertThat(row.get("port").isInt()).isTrue();
            assertThat(row.get("ownerPid").isNumber()).isTrue();
            assertThat(row.get("uptimeSeconds").isNumber()).isTrue();
            assertThat(java.time.Instant.parse(row.get("startedAt").asText())).isEqualTo(lease.startedAt());
            assertThat(listed).containsExactlyInAnyOrderElementsOf(pids).contains(lease.server().pid());
            assertThat(row.get("log").asText()).isEqualTo(lease.logPath());
            assertThat(row.get("uptime").asText()).matches("\\d+s");
        }
        var after = TetherCli.run(home(), "ps");
        assertThat(after.out().strip()).isEqualTo("No managed servers.");
    }
}
