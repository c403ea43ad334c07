package dev.tether.cli;

import static dev.tether.cli.TetherHomes.UP;
import static dev.tether.cli.TetherHomes.healthServer;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.fixtures.Fixture;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcessTree;
import dev.tether.server.Lease;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A lease file damaged under a real server (truncated by a full disk, or overwritten with garbage): {@code ps}
 * lists it as damaged with its file, and {@code reap}, {@code stop --port} and {@code port --kill} stop what it
 * still identifies (recorded identities, the lease marker in the processes' environment) and move the file aside
 * to {@code <id>.json.damaged}. Before the fix they all acted as if nothing were there (and {@code port --kill}
 * threw UncheckedIOException).
 */
class DamagedLeaseTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path home() {
        return dir.resolve("home");
    }

    private Path leaseFile(Lease lease) {
        return home().resolve("leases").resolve(lease.id() + ".json");
    }

    /** Cuts the lease file to its first half: what a full disk leaves of a write that was not atomic. */
    private void truncate(Lease lease) throws Exception {
        byte[] bytes = Files.readAllBytes(leaseFile(lease));
        Files.write(leaseFile(lease), Arrays.copyOf(bytes, bytes.length / 2));
    }

    private void garble(Lease lease) throws Exception {
        Files.write(leaseFile(lease), "\u0000\u0000 not json at all {{{".getBytes(StandardCharsets.UTF_8));
    }

    private void assertStoppedAndMovedAside(Lease lease, int port) {
        assertThat(new ProcessTree(lease.membership()).members()).as("members of %s", lease.id()).isEmpty();
        assertThat(lease.server().isAlive()).as("server").isFalse();
        assertThat(PortListeners.isListening(port)).as("port %d listens", port).isFalse();
        assertThat(leaseFile(lease)).doesNotExist();
    }

    @Test
    void psListsATruncatedLeaseAsDamagedAndReapStopsItsOrphanedServer() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether serve = tethers.start(null, "serve", "--command", healthServer(), "--port", String.valueOf(port));
        Lease lease = serve.orphanItsServer();
        truncate(lease);

        var ps = TetherCli.run(home(), "ps");
        assertThat(ps.exitCode()).as(ps.err()).isZero();
        assertThat(ps.err()).isEmpty();
        assertThat(ps.out().lines().filter(l -> l.startsWith(lease.id() + " "))).singleElement()
                .satisfies(l -> assertThat(l).contains("damaged").contains(String.valueOf(lease.server().pid())));
        assertThat(ps.out()).contains("damaged lease file " + leaseFile(lease));
        var json = TetherCli.run(home(), "ps", "--json");
        JsonNode rows = new ObjectMapper().readTree(json.out());
        assertThat(rows).singleElement().satisfies(r -> {
            assertThat(r.get("id").asText()).isEqualTo(lease.id());
            assertThat(r.get("state").asText()).isEqualTo("damaged");
            assertThat(r.get("file").asText()).isEqualTo(leaseFile(lease).toString());
        });

        var reaped = TetherCli.run(home(), "reap");

        assertThat(reaped.exitCode()).as(reaped.err()).isZero();
        assertThat(reaped.err()).isEmpty();
        assertThat(reaped.out()).startsWith("Reaped orphan " + lease.id()).contains("damaged lease file");
        assertStoppedAndMovedAside(lease, port);
        assertThat(home().resolve("leases").resolve(lease.id() + ".json.damaged")).exists();
        assertThat(TetherCli.run(home(), "ps").out().strip()).isEqualTo("No managed servers.");
    }

    @Test
    void stopByPortStopsAServerWhoseLeaseIsGarbage() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether serve = tethers.start(null, "serve", "--command", healthServer(), "--port", String.valueOf(port));
        Lease lease = serve.awaitReady();
        garble(lease);   // nothing left but the file name: the marker its processes carry

        var stopped = TetherCli.run(home(), "stop", "--port", String.valueOf(port));

        assertThat(stopped.exitCode()).as(stopped.err()).isZero();
        assertThat(stopped.err()).isEmpty();
        assertThat(stopped.out()).startsWith("Stopped " + lease.id() + " (damaged lease file");
        assertStoppedAndMovedAside(lease, port);
        serve.awaitExit(UP);   // its shim was stopped: the serve that owned it ends too
    }

    @Test
    void portKillStopsAServerWhoseLeaseIsTruncatedWithoutThrowing() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether serve = tethers.start(null, "serve", "--command", healthServer(), "--port", String.valueOf(port));
        Lease lease = serve.orphanItsServer();
        truncate(lease);

        var shown = TetherCli.run(home(), "port", String.valueOf(port));
        assertThat(shown.exitCode()).as(shown.err()).isZero();
        assertThat(shown.out()).contains("lease file").contains("is damaged");

        var killed = TetherCli.run(home(), "port", String.valueOf(port), "--kill");

        assertThat(killed.exitCode()).as(killed.err()).isZero();
        assertThat(killed.err()).isEmpty();
        assertThat(killed.out()).contains("Stopped " + lease.id() + " (damaged lease file");
        assertStoppedAndMovedAside(lease, port);
        assertThat(home().resolve("leases").resolve(lease.id() + ".json.damaged")).exists();
    }
}
