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
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A server whose process, on SIGTERM, starts an escapee (new session and group, empty environment, listening on
 * another port) and exits at once; its shim is killed with SIGKILL and its tether too, then {@code tether reap}
 * stops the orphan. The reaper freezes the tree (SIGSTOP until the member set is stable), sends SIGTERM, then
 * SIGCONT, and watches without pause while the members handle SIGTERM, freezing every newcomer on sight: the
 * escapee is caught as the dying member's child, or by the marker it carries until its last exec. Nothing may
 * survive. (Repeated: the escape is a race the stopper must win every time.)
 */
class EscapeDuringStopTest {
    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private ProcessIdentity escapee;

    private Path home() {
        return dir.resolve("home");
    }

    @AfterEach
    void killASurvivor() {
        if (escapee != null && escapee.isAlive()) {
            Signaller.send(escapee, Signal.KILL);
            Poll.until(() -> !escapee.isAlive(), Duration.ofSeconds(10));
        }
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
        assertThat(pidFile).as("the server got SIGTERM and started its escapee").exists();
        int pid = Integer.parseInt(Files.readString(pidFile).strip());
        // The escapee's pid was written before its parent exited: if that process still runs this escapee, it survived.
        Optional<ProcessIdentity> survivor = ProcessIdentity.of(pid).filter(ProcessIdentity::isAlive)
                .filter(id -> ProcFs.commandLine(pid).contains("--port " + escapePort) || ProcFs.commandLine(pid).contains("setsid"));
        escapee = survivor.orElse(null);
        assertThat(survivor).as("escapee pid %d (%s) survived the reap; reap said:\n%s", pid,
                ProcFs.commandLine(pid), reaped.out()).isEmpty();
        assertThat(PortListeners.isListening(escapePort)).as("escape port listens").isFalse();
        assertThat(new ProcessTree(lease.membership()).members()).isEmpty();
        assertThat(List.of(lease.port())).noneMatch(PortListeners::isListening);
    }
}
