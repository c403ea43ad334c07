package dev.tether.proc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tether.fixtures.ExitsAtOnce;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.Worker;
import dev.tether.testing.TestLease;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SpawnerTest {

    @TempDir
    Path dir;

    @Test
    void theCommandLeadsItsOwnSessionAndGroupUnderThePidJavaReports(TestLease lease) throws Exception {
        Spawned spawned = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", "0"),
                dir.resolve("w.log"), lease.id()));
        try {
            // setsid(2) runs in the child just after Java's start() returns.
            assertThat(Poll.until(() -> ProcFs.stat(spawned.pid()).orElseThrow().session() == spawned.pid(),
                    Duration.ofSeconds(10))).as("leads its own session").isTrue();
            ProcStat stat = ProcFs.stat(spawned.pid()).orElseThrow();
            assertThat(stat.pgrp()).as("process group").isEqualTo(spawned.pid());
            assertThat(spawned.identity()).isPresent();
            assertThat(Poll.until(() -> ProcFs.commandLine(spawned.pid()).contains(Worker.class.getName()),
                    Duration.ofSeconds(10))).as("setsid exec'd the worker in place").isTrue();
            assertThat(ProcFs.environContains(spawned.pid(), "TETHER_LEASE=" + lease.id())).isTrue();
        } finally {
            TreeStopper.stop(new ProcessTree(spawned.membership()), Duration.ofSeconds(5));
        }
    }

    @Test
    void outputGoesToTheLogFile(TestLease lease) throws Exception {
        Path log = dir.resolve("logs/exit.log");
        Spawned spawned = Spawner.spawn(Spawner.Spec.of(
                Fixture.command(ExitsAtOnce.class, "--code", "7", "--message", "bye from the fixture"), log, lease.id()));
        assertThat(spawned.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(spawned.process().exitValue()).isEqualTo(7);
        assertThat(Files.readString(log)).contains("bye from the fixture");
    }

    @Test
    void aMissingExecutableIsOneClearErrorAndNothingStarts() {
        assertThatThrownBy(() -> Spawner.spawn(Spawner.Spec.of(List.of("no-such-server-binary", "--port", "1"),
                dir.resolve("x.log"), "unused")))
                .isInstanceOf(SpawnException.class)
                .hasMessageContaining("executable not found on PATH: no-such-server-binary");
        assertThatThrownBy(() -> Spawner.spawn(Spawner.Spec.of(List.of("/nonexistent/bin/server"),
                dir.resolve("x.log"), "unused")))
                .isInstanceOf(SpawnException.class)
                .hasMessageContaining("executable not found: /nonexistent/bin/server");
        assertThat(dir.resolve("x.log")).doesNotExist();
    }
}
