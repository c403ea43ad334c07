package dev.tether.server;

import dev.tether.proc.Poll;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawner;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * GPU memory after a stop (DESIGN 3.9). A CUDA process's memory is released by the driver some time
 * after the process is gone, and a server started at once on the same GPUs can fail with "out of
 * memory". So a stop that precedes another start on the same GPUs ({@link ServerHandle#restart}, the
 * pipeline's model swap) waits, bounded, until none of the stopped pids appears in
 * {@code nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits}.
 *
 * <p>Where {@code nvidia-smi} is not on PATH (no NVIDIA GPU, or another vendor's) there is nothing to
 * wait for and {@link #awaitReleased} returns at once. Pids are compared as nvidia-smi prints them:
 * inside a container with its own pid namespace the driver may report host pids, which then never
 * match and the wait ends at the first query.
 */
public final class GpuMemory {
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);
    static final List<String> QUERY = List.of("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits");
    /** nvidia-smi takes tens of ms per call (more on a busy many-GPU host): poll gently. */
    private static final Duration POLL_CEILING = Duration.ofMillis(500);
    /** One nvidia-smi call that takes longer than this is treated as failed (a hung driver call). */
    private static final Duration CALL_TIMEOUT = Duration.ofSeconds(15);

    /** One line of the query: a process with a CUDA context, and its GPU memory in MiB when reported. */
    public record ComputeApp(int pid, OptionalLong usedMiB) {}

    public enum Outcome {
        /** None of the pids holds GPU memory (any more). */
        RELEASED,
        /** Some still appeared when the timeout ran out. */
        TIMED_OUT,
        /** nvidia-smi is not on PATH: nothing to wait for. */
        NO_NVIDIA_SMI,
        /** nvidia-smi ran but failed (driver not loaded, hung call): not waited on. */
        QUERY_FAILED,
        /** No pids were given. */
        NOTHING_TO_WAIT_FOR
    }

    /**
     * @param stillHolding the pids that held GPU memory at the last query (empty unless timed out)
     * @param message      one line for the user, e.g. what a timeout means
     */
    public record Result(Outcome outcome, Duration waited, Set<Integer> stillHolding, String message) {
        public Result {
            stillHolding = Set.copyOf(stillHolding);
        }

        public boolean timedOut() {
            return outcome == Outcome.TIMED_OUT;
        }
    }

    private final Path nvidiaSmi;

    /** @param nvidiaSmi the nvidia-smi executable, or null when there is none */
    GpuMemory(Path nvidiaSmi) {
        this.nvidiaSmi = nvidiaSmi;
    }

    /** Whether there is an nvidia-smi to ask. */
    public boolean available() {
        return nvidiaSmi != null;
    }

    /** nvidia-smi as found on PATH now, if at all. */
    public static GpuMemory fromPath() {
        try {
            return new GpuMemory(Spawner.resolveExecutable("nvidia-smi", null));
        } catch (SpawnException e) {
            return new GpuMemory(null);
        }
    }

    /**
     * Waits until none of {@code pids} appears among nvidia-smi's compute apps, at most {@code timeout};
     * returns at once when nvidia-smi is absent or there are no pids. Never throws for nvidia-smi's sake:
     * a failing query ends the wait with {@link Outcome#QUERY_FAILED}.
     */
    public static Result awaitReleased(Set<Integer> pids, Duration timeout) {
        return fromPath().await(pids, timeout);
    }

    Result await(Set<Integer> pids, Duration timeout) {
        long t0 = System.nanoTime();
        if (pids.isEmpty()) {
            return new Result(Outcome.NOTHING_TO_WAIT_FOR, Duration.ZERO, Set.of(), "no stopped processes to wait for");
        }
        if (nvidiaSmi == null) {
            return new Result(Outcome.NO_NVIDIA_SMI, Duration.ZERO, Set.of(),
                    "nvidia-smi is not on PATH: not waiting for GPU memory");
        }
        Set<Integer> holding = new TreeSet<>();
        String[] failure = new String[1];
        boolean done = Poll.until(() -> {
            Optional<String> output = query(failure);
            if (output.isEmpty()) {
                return true;   // failed: stop waiting, say why below
            }
            holding.clear();
            holding.addAll(holding(parse(output.get()), pids));
            return holding.isEmpty();
        }, timeout, POLL_CEILING);
        Duration waited = Duration.ofNanos(System.nanoTime() - t0);
        if (failure[0] != null) {
            return new Result(Outcome.QUERY_FAILED, waited, Set.of(),
                    "nvidia-smi failed (" + failure[0] + "): not waiting for GPU memory");
        }
        if (!done) {
            return new Result(Outcome.TIMED_OUT, waited, holding, "GPU memory: stopped process(es) " + holding
                    + " still listed by nvidia-smi --query-compute-apps after " + timeout.toSeconds()
                    + " s; starting anyway (the next server may run out of GPU memory)");
        }
        return new Result(Outcome.RELEASED, waited, Set.of(),
                "GPU memory of the stopped processes released after " + waited.toMillis() + " ms");
    }

    /** Runs the query once; empty (with {@code failure[0]} set) when nvidia-smi fails or hangs. */
    private Optional<String> query(String[] failure) {
        return run(QUERY, failure);
    }

    /**
     * The GPUs {@code nvidia-smi -L} lists, by index ("0", "1", ...): empty when nvidia-smi is absent.
     *
     * @throws IllegalStateException nvidia-smi is there but failed (its reason in the message)
     */
    public static List<String> list() {
        GpuMemory smi = fromPath();
        if (smi.nvidiaSmi == null) {
            return List.of();
        }
        String[] failure = new String[1];
        Optional<String> output = smi.run(List.of("-L"), failure);
        if (output.isEmpty()) {
            throw new IllegalStateException("nvidia-smi -L failed (" + failure[0] + ")");
        }
        return parseList(output.get());
    }

    /** "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-...)" lines; MIG devices listed under a GPU are not GPUs of their own. */
    static List<String> parseList(String output) {
        List<String> gpus = new ArrayList<>();
        for (String line : output.split("\\R")) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("^GPU (\\d+):").matcher(line);
            if (m.find()) {
                gpus.add(m.group(1));
            }
        }
        return gpus;
    }

    /** Runs nvidia-smi once with {@code args}; empty (with {@code failure[0]} set) when it fails or hangs. */
    private Optional<String> run(List<String> args, String[] failure) {
        List<String> command = new ArrayList<>();
        command.add(nvidiaSmi.toString());
        command.addAll(args);
        Process process;
        try {
            process = new ProcessBuilder(command).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        } catch (IOException e) {
            failure[0] = e.getMessage();
            return Optional.empty();
        }
        CompletableFuture<String> output = new CompletableFuture<>();
        Thread.ofVirtual().name("nvidia-smi-output").start(() -> {
            try (InputStream in = process.getInputStream()) {
                output.complete(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            } catch (IOException e) {
                output.completeExceptionally(e);
            }
        });
        try {
            if (!process.waitFor(CALL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                process.destroyForcibly();
                failure[0] = "no answer within " + CALL_TIMEOUT.toSeconds() + " s";
                return Optional.empty();
            }
            String text = output.get(2, TimeUnit.SECONDS);
            if (process.exitValue() != 0) {
                String first = text.lines().map(String::strip).filter(l -> !l.isEmpty()).findFirst().orElse("");
                failure[0] = "exit code " + process.exitValue() + (first.isEmpty() ? "" : ": " + first);
                return Optional.empty();
            }
            return Optional.of(text);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            process.destroyForcibly();
            failure[0] = "interrupted";
            return Optional.empty();
        } catch (ExecutionException | TimeoutException e) {
            failure[0] = "its output could not be read: " + e;
            return Optional.empty();
        }
    }

    /**
     * Parses the query's output: one {@code pid, used_memory} line per process and GPU (a process on
     * two GPUs has two lines). Lines that do not start with a pid are skipped: the "No running
     * processes found" of older drivers, blank lines, warnings. A memory value that is not a number
     * ({@code [N/A]} under MIG or without permission, {@code [Not Supported]}) is empty.
     */
    static List<ComputeApp> parse(String output) {
        List<ComputeApp> apps = new ArrayList<>();
        for (String line : output.split("\\R")) {
            String[] fields = line.split(",");
            if (fields.length < 1) {
                continue;
            }
            int pid;
            try {
                pid = Integer.parseInt(fields[0].strip());
            } catch (NumberFormatException e) {
                continue;
            }
            if (pid <= 0) {
                continue;
            }
            OptionalLong used = OptionalLong.empty();
            if (fields.length > 1) {
                try {
                    used = OptionalLong.of(Long.parseLong(fields[1].strip()));
                } catch (NumberFormatException e) {
                    // [N/A], [Not Supported], [Insufficient Permissions]: unknown amount
                }
            }
            apps.add(new ComputeApp(pid, used));
        }
        return apps;
    }

    /** Which of {@code pids} appear among {@code apps} (whatever their memory reads). */
    static Set<Integer> holding(List<ComputeApp> apps, Set<Integer> pids) {
        Set<Integer> found = new TreeSet<>();
        for (ComputeApp app : apps) {
            if (pids.contains(app.pid())) {
                found.add(app.pid());
            }
        }
        return found;
    }
}
