package dev.tether.cli;

import static dev.tether.cli.TetherHomes.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.proc.Poll;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A tether command run in the background (a child JVM with TETHER_HOME set), its output collected as
 * it comes. Closing it SIGKILLs it if it still runs.
 */
public final class BackgroundTether implements AutoCloseable {
    public final Process process;
    public final Path home;
    private final StringBuffer out = new StringBuffer();
    private final StringBuffer err = new StringBuffer();
    private final Thread outReader;
    private final Thread errReader;

    private BackgroundTether(Process process, Path home) {
        this.process = process;
        this.home = home;
        this.outReader = Thread.ofVirtual().start(() -> copy(process.getInputStream(), out));
        this.errReader = Thread.ofVirtual().start(() -> copy(process.getErrorStream(), err));
    }

    public static BackgroundTether start(Path home, Path workDir, String... args) throws IOException {
        ProcessBuilder builder = new ProcessBuilder(TetherCli.command(args))
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        builder.environment().put("TETHER_HOME", home.toString());
        if (workDir != null) {
            builder.directory(workDir.toFile());
        }
        return new BackgroundTether(builder.start(), home);
    }

    private static void copy(InputStream in, StringBuffer into) {
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                into.append(line).append('\n');
            }
        } catch (IOException e) {
            // the process is gone
        }
    }

    public String out() {
        return out.toString();
    }

    public String err() {
        return err.toString();
    }

    public ProcessIdentity identity() {
        return ProcessIdentity.of((int) process.pid()).orElseThrow();
    }

    /** Waits for a line of stdout that starts with {@code prefix} and returns it; fails early if tether exits. */
    public String awaitLine(String prefix, Duration timeout) {
        String[] found = new String[1];
        Poll.until(() -> {
            found[0] = out().lines().filter(l -> l.startsWith(prefix)).findFirst().orElse(null);
            return found[0] != null || !process.isAlive();
        }, timeout, Duration.ofMillis(20));
        if (found[0] == null && !process.isAlive()) {
            try {
                outReader.join(Duration.ofSeconds(5));   // its last lines may still be in the pipe
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            found[0] = out().lines().filter(l -> l.startsWith(prefix)).findFirst().orElse(null);
        }
        assertThat(found[0]).as("a line starting '%s' (alive: %s)\nstdout:\n%s\nstderr:\n%s", prefix,
                process.isAlive(), out(), err()).isNotNull();
        return found[0];
    }

    /** Waits for "Ready:" and returns the lease of the server it started (the one lease it owns). */
    public Lease awaitReady() {
        awaitLine("Ready: ", UP);
        // `Ready:` is said first, then recorded in the lease (a few ms later): wait for the record too.
        List<List<Lease>> found = new java.util.ArrayList<>(List.of(List.of()));
        Poll.until(() -> {
            found.set(0, leases(home).stream().filter(l -> l.owner() != null && l.owner().pid() == process.pid()).toList());
            return found.get(0).size() == 1 && found.get(0).getFirst().state() == Lease.State.READY;
        }, UP, Duration.ofMillis(5));
        List<Lease> leases = found.get(0);
        assertThat(leases).as("leases of tether pid %d once ready", process.pid()).hasSize(1);
        assertThat(leases.getFirst().state()).as("its lease records READY").isEqualTo(Lease.State.READY);
        return leases.getFirst();
    }

    /** A pool's leases: {@code count} of this tether's servers, all recorded READY. */
    public List<Lease> awaitReadyLeases(int count) {
        List<List<Lease>> found = new java.util.ArrayList<>(List.of(List.of()));
        Poll.until(() -> {
            found.set(0, leases(home).stream().filter(l -> l.owner() != null && l.owner().pid() == process.pid()
                    && l.state() == Lease.State.READY).toList());
            return found.get(0).size() >= count || !process.isAlive();
        }, UP, Duration.ofMillis(10));
        assertThat(found.get(0)).as("READY leases of tether pid %d\nstdout:\n%s\nstderr:\n%s", process.pid(), out(), err())
                .hasSize(count);
        return found.get(0);
    }

    public int awaitExit(Duration timeout) throws InterruptedException {
        boolean exited = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(exited).as("tether exits within %s\nstdout:\n%s\nstderr:\n%s", timeout, out(), err()).isTrue();
        outReader.join(Duration.ofSeconds(5));
        errReader.join(Duration.ofSeconds(5));
        return process.exitValue();
    }

    /**
     * Leaves an orphan: SIGSTOP the shim (so it cannot react), SIGKILL this tether, SIGKILL the shim.
     * The server runs on, its lease naming an owner and a shim that are both dead.
     */
    public Lease orphanItsServer() throws Exception {
        Lease lease = awaitReady();
        freeze(lease.shim());
        process.destroyForcibly();
        assertThat(process.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(Signaller.send(lease.shim(), Signal.KILL)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(Poll.until(() -> !lease.shim().isAlive(), Duration.ofSeconds(10))).as("shim dead").isTrue();
        assertThat(lease.server().isAlive()).as("server left running").isTrue();
        assertThat(lease.isOrphan()).isTrue();
        return lease;
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
