package dev.tether.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.fixtures.EscapesOnSigterm;
import dev.tether.fixtures.Fixture;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A server whose process, on SIGTERM, starts an escapee (new session and group, empty environment, listening on
 * another port) and exits at once; its shim is killed with SIGKILL and its tether too, then {@code tether reap}
 * stops the orphan. The reaper freezes the tree (SIGSTOP until the member set is stable), sends SIGTERM, then
 * SIGCONT, and watches without pause while the members handle SIGTERM, freezing every newcomer on sight: the
 * escapee is caught as the dying member's child (sometimes while it is still being started, and then the fixture
 * writes no pid file). Nothing running the escapee's command may survive. (Repeated: the escape is a race the stopper must win every time.)
 */
class EscapeDuringStopTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private final List<ProcessIdentity> escapees = new java.util.ArrayList<>();

    private Path home() {
        return dir.resolve("home");
    }

    @AfterEach
    void killASurvivor() {
        escapees.forEach(id -> Signaller.send(id, Signal.KILL));
        Poll.until(() -> escapees.stream().noneMatch(ProcessIdentity::isAlive), Duration.ofSeconds(10));
    }

    @RepeatedTest(3)
    void anEscapeStartedBySigtermDuringAReapDoesNotSurvive() throws Exception {
        int escapePort = Fixture.freePort();
        Path pidFile = dir.resolve("escapee.pid");
        String command = String.join(" ", Fixture.command(EscapesOnSigterm.class, "--port", "{port}",
                "--escape-port", String.valueOf(escapePort), "--pid-file", pidFile.toString()));
        BackgroundTether serve = tethers.start(null, "serve", "--command", command, "--health", "none", "--port", "auto");
        Lease lease = serve.orphanItsServer();   // shim frozen, tether SIGKILLed, shim SIGKILLed

        var reaped = TetherCli.run(home(), "reap");

        assertThat(reaped.exitCode()).as(reaped.err()).isZero();
        assertThat(reaped.out()).startsWith("Reaped orphan " + lease.id());
        // The escapee's pid is written once it has been started (if the stopper killed it while it was being
        // started, there is no file and nothing to survive); any process running the escapee's command survived.
        String escapeeCommand = "Worker --port " + escapePort;
        List<ProcessIdentity> survivors = ProcFs.pids().stream()
                .filter(pid -> ProcFs.commandLine(pid).contains(escapeeCommand))
                .flatMap(pid -> ProcessIdentity.of(pid).filter(ProcessIdentity::isAlive).stream()).toList();
        if (Files.exists(pidFile)) {
            int pid = Integer.parseInt(Files.readString(pidFile).strip());
            ProcessIdentity.of(pid).filter(ProcessIdentity::isAlive)
                    .filter(id -> ProcFs.commandLine(pid).contains("setsid") || ProcFs.commandLine(pid).contains("env"))
                    .ifPresent(id -> escapees.add(id));
        }
        escapees.addAll(survivors);
        assertThat(escapees).as("escapees that survived the reap; reap said:\n%s", reaped.out()).isEmpty();
        assertThat(PortListeners.isListening(escapePort)).as("escape port listens").isFalse();
        assertThat(new ProcessTree(lease.membership()).members()).isEmpty();
        assertThat(List.of(lease.port())).noneMatch(PortListeners::isListening);
    }
}
