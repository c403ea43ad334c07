package dev.tether.server;

import dev.tether.proc.Spawned;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

/**
 * The owner's side of one shim: the pipe to it (whose closing, even by our death, makes it stop the
 * server) and the lines it reports. See {@link Shim} for the protocol.
 */
final class ShimConnection {
    private final Spawned shim;
    private final OutputStream toShim;
    final CompletableFuture<Integer> started = new CompletableFuture<>();
    /** Completes with the root's exit code when it exits on its own, or with null when the shim is gone. */
    final CompletableFuture<Integer> ended = new CompletableFuture<>();
    private volatile Integer exitCode;
    private volatile boolean daemonized;
    private volatile String stopSummary;
    private volatile String stoppedBy;
    private volatile String failure;
    private final Thread reader;
    private final long spawnedAtNanos;
    private volatile long startedAtNanos;

    /** @param spawnedAtNanos {@link System#nanoTime()} just before the shim was spawned */
    ShimConnection(Spawned shim, long spawnedAtNanos) {
        this.shim = shim;
        this.spawnedAtNanos = spawnedAtNanos;
        this.toShim = shim.process().getOutputStream();
        this.reader = Thread.ofVirtual().name("shim-" + shim.pid()).start(this::readReports);
    }

    Spawned shim() {
        return shim;
    }

    private void readReports() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(shim.process().getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                String[] words = line.split(" ", 2);
                String rest = words.length > 1 ? words[1] : "";
                switch (words[0]) {
                    case "started" -> {
                        startedAtNanos = System.nanoTime();
                        started.complete(Integer.parseInt(rest.split(" ")[0]));
                    }
                    case "exited" -> {
                        exitCode = Integer.parseInt(rest.trim());
                        ended.complete(exitCode);
                    }
                    case "daemonized" -> daemonized = true;
                    case "stopping" -> stoppedBy = rest;
                    case "stopped" -> stopSummary = rest;
                    case "failed" -> {
                        failure = rest;
                        started.completeExceptionally(new IllegalStateException(rest));
                    }
                    default -> { /* a newer shim's report: ignore */ }
                }
            }
        } catch (IOException | RuntimeException e) {
            // the shim is gone; callers see it through shimAlive()
        }
        started.completeExceptionally(new IllegalStateException("the shim exited before starting the server"));
        ended.complete(exitCode);
    }

    /** From spawning the shim to its "started" report (its JVM's start, and the server's spawn), once reported. */
    java.util.Optional<Duration> startup() {
        long at = startedAtNanos;
        return at == 0 ? java.util.Optional.empty() : java.util.Optional.of(Duration.ofNanos(at - spawnedAtNanos));
    }

    /**
     * Completes once the shim process has exited and its last reports are read: a caller can then tell a
     * shim that stopped the server (a "stopped" report) from one that died without a word (kill -9).
     */
    CompletableFuture<Void> shimExited() {
        return shim.process().onExit().thenRun(() -> {
            try {
                reader.join(Duration.ofSeconds(2));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
    }

    boolean shimAlive() {
        return shim.process().isAlive();
    }

    /** The server's root exited (and it did not daemonize): its exit code. */
    Integer exitCode() {
        return exitCode;
    }

    /** The shim's "stopped" summary, once it has stopped the server (for whatever reason). */
    String stopSummary() {
        return stopSummary;
    }

    /** Who began a stop from outside ({@code `tether stop`}, {@code SIGTERM to its shim}), once the shim said so. */
    String stoppedBy() {
        return stoppedBy;
    }

    boolean daemonized() {
        return daemonized;
    }

    String failure() {
        return failure;
    }

    /**
     * Asks the shim to stop the server and waits for the shim to exit.
     *
     * @return the shim's summary, or null if it did not answer before the deadline
     */
    String stop(Duration deadline) {
        try {
            toShim.write("stop\n".getBytes(StandardCharsets.UTF_8));
            toShim.flush();
            toShim.close();
        } catch (IOException e) {
            // already gone: waiting below tells
        }
        try {
            if (shim.process().waitFor(deadline.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) {
                reader.join(Duration.ofSeconds(2));   // its last report may still be in the pipe
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return stopSummary;
    }
}
