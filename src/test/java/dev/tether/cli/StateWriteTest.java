package dev.tether.cli;

import static dev.tether.cli.TetherHomes.healthServer;
import static dev.tether.cli.TetherHomes.processesOf;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * A $TETHER_HOME whose state cannot be written gives one clear line and exit 1 (never "unexpected failure"), and
 * leaves nothing running. chmod does not stop root (these tests may run as root), so the home is broken in ways
 * that stop anyone: a regular file where {@code leases/} belongs, and a tiny tmpfs filled up to its last page, so
 * that the lease is written (before anything is spawned) but the update after the shim's spawn fails.
 */
class StateWriteTest {
    private static final long PAGE = 4096;

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path home() {
        return dir.resolve("home");
    }

    @Test
    void aFileWhereLeasesBelongIsOneLineAndExitOne() throws Exception {
        Files.createDirectories(home());
        Files.writeString(home().resolve("leases"), "not a directory\n");

        for (String[] args : new String[][] {{"serve", "--command", healthServer(), "--port", "auto"}, {"ps"}, {"reap"}}) {
            var result = TetherCli.run(home(), args);
            assertThat(result.exitCode()).as("%s: %s", args[0], result.err()).isEqualTo(ExitCode.JOB_FAILED);
            assertThat(result.errLines()).as(args[0]).singleElement().asString()
                    .startsWith("tether: cannot create tether's state directory " + home())
                    .contains("a file is in the way").contains("TETHER_HOME").doesNotContain("unexpected");
            assertThat(result.out()).as(args[0]).doesNotContain("Starting server");
        }
        assertThat(processesOf(home())).isEmpty();
    }

    @Test
    void aHomeThatFillsUpAfterTheLeaseIsWrittenStopsWhatWasSpawned() throws Exception {
        Files.createDirectories(home());
        Process m = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", home().toString())
                .redirectErrorStream(true).start();
        boolean mounted = m.waitFor(30, TimeUnit.SECONDS) && m.exitValue() == 0;
        Assumptions.assumeTrue(mounted, "mount -t tmpfs failed (not root?): the full-home case is skipped");
        try {
            assertThat(TetherCli.run(home(), "ps").exitCode()).isZero();   // creates the state directories
            long free = Files.getFileStore(home()).getUsableSpace();
            Files.write(home().resolve("filler"), new byte[(int) (free - PAGE)]);   // one page left: one lease write
            assertThat(Files.getFileStore(home()).getUsableSpace()).isEqualTo(PAGE);

            var result = TetherCli.run(home(), "serve", "--command", healthServer(), "--port", "auto");

            assertThat(result.exitCode()).as(result.out() + result.err()).isEqualTo(ExitCode.JOB_FAILED);
            assertThat(result.errLines()).singleElement().asString().startsWith("tether: cannot write the lease ")
                    .contains("No space left on device").doesNotContain("unexpected");
            assertThat(result.out()).contains("Starting server").doesNotContain("Ready:");
            assertThat(processesOf(home())).as("processes of the home after exit 1").isEmpty();
            try (var leases = Files.list(home().resolve("leases"))) {
                assertThat(leases.map(p -> p.getFileName().toString()).filter(n -> !n.equals(".lock"))).isEmpty();
            }
        } finally {
            try {
                TetherHomes.assertNoProcessesOf(home());
            } finally {
                new ProcessBuilder("umount", "-l", home().toString()).inheritIO().start().waitFor(30, TimeUnit.SECONDS);
            }
        }
    }
}
