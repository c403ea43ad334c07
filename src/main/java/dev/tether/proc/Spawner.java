package dev.tether.proc;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Starts a command as the leader of a new session and process group (DESIGN 3.1) with
 * {@code TETHER_LEASE=<id>} in its environment and its output appended to a log file — never to a
 * pipe nobody drains.
 *
 * <p>The {@code setsid} program is put in front of the argv: a child of the JVM is not a group
 * leader, so setsid(2) succeeds in place and setsid execs the command without forking; the command
 * keeps the pid Java reports. The argv is never given to a shell.
 */
public final class Spawner {
    private static final Path SETSID = Path.of("/usr/bin/setsid");
    private static final java.time.Duration SETSID_DEADLINE = java.time.Duration.ofSeconds(5);

    /**
     * @param argv       program and arguments; the program is looked up on PATH when it has no slash
     * @param env        extra environment entries (the lease marker is added on top)
     * @param pipeStdin  give the child a pipe on stdin (the shim's lifeline) instead of /dev/null
     * @param output     where stdout and stderr go
     */
    public record Spec(List<String> argv, Map<String, String> env, Path workDir, Path logFile, String leaseId,
                       boolean pipeStdin, Output output) {
        public Spec {
            argv = List.copyOf(argv);
            env = env == null ? Map.of() : Map.copyOf(env);
            output = output == null ? Output.LOG_FILE : output;
        }

        public static Spec of(List<String> argv, Path logFile, String leaseId) {
            return new Spec(argv, Map.of(), null, logFile, leaseId, false, Output.LOG_FILE);
        }
    }

    /** Where a child's output goes. A pipe must always have a reader (the shim is that reader). */
    public enum Output {
        /** stdout and stderr appended to the log file. */
        LOG_FILE,
        /** stdout and stderr merged into one pipe to the parent (a server under its shim). */
        PIPE_BOTH,
        /** stdout to a pipe (a protocol channel), stderr appended to the log file (the shim itself). */
        PIPE_STDOUT,
        /** stdin, stdout and stderr are the parent's (a job under {@code tether exec}: the terminal's); no log file. */
        INHERIT
    }

    private Spawner() {}

    public static Spawned spawn(Spec spec) throws SpawnException {
        if (spec.argv().isEmpty()) {
            throw new SpawnException("empty command");
        }
        Path program = resolveExecutable(spec.argv().getFirst(), spec.env().get("PATH"));
        List<String> command = new ArrayList<>(spec.argv().size() + 1);
        Path setsid = Files.isExecutable(SETSID) ? SETSID : resolveExecutable("setsid", null);
        command.add(setsid.toString());
        command.add(program.toString());
        command.addAll(spec.argv().subList(1, spec.argv().size()));

        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().putAll(spec.env());
        if (spec.leaseId() != null) {
            builder.environment().put(Membership.LEASE_ENV, spec.leaseId());
        }
        if (spec.workDir() != null) {
            builder.directory(spec.workDir().toFile());
        }
        try {
            Path parent = spec.logFile() == null ? null : spec.logFile().toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
        } catch (IOException e) {
            throw new SpawnException("cannot create the log directory for " + spec.logFile() + ": " + e.getMessage(), e);
        }
        switch (spec.output()) {
            case LOG_FILE -> {
                builder.redirectErrorStream(true);
                builder.redirectOutput(ProcessBuilder.Redirect.appendTo(spec.logFile().toFile()));
            }
            case PIPE_BOTH -> builder.redirectErrorStream(true);
            case PIPE_STDOUT -> builder.redirectError(ProcessBuilder.Redirect.appendTo(spec.logFile().toFile()));
            case INHERIT -> builder.redirectOutput(ProcessBuilder.Redirect.INHERIT).redirectError(ProcessBuilder.Redirect.INHERIT);
        }
        builder.redirectInput(spec.pipeStdin() ? ProcessBuilder.Redirect.PIPE
                : spec.output() == Output.INHERIT ? ProcessBuilder.Redirect.INHERIT
                : ProcessBuilder.Redirect.from(new File("/dev/null")));
        Process process;
        try {
            process = builder.start();
        } catch (IOException e) {
            throw new SpawnException("cannot start " + program + ": " + e.getMessage(), e);
        }
        // The setsid program calls setsid(2) in the child just after the fork: return only once it has (or
        // the child is already gone), so that the session and group the pid names exist when callers signal them.
        int pid = (int) process.pid();
        Poll.until(() -> ProcFs.stat(pid).map(s -> s.session() == pid || s.isDead()).orElse(true), SETSID_DEADLINE);
        var identity = ProcessIdentity.of(pid);
        return new Spawned(process, identity, spec.leaseId(), spec.logFile());
    }

    /**
     * Finds the executable the way execvp would, so that a missing one is one clear error before
     * anything starts rather than a line in a log.
     */
    public static Path resolveExecutable(String name, String pathOverride) throws SpawnException {
        if (name.contains("/")) {
            Path p = Path.of(name);
            if (Files.isRegularFile(p) && Files.isExecutable(p)) {
                return p;
            }
            throw new SpawnException(Files.exists(p)
                    ? "not an executable file: " + name + " (check its permissions)"
                    : "executable not found: " + name);
        }
        String path = pathOverride != null ? pathOverride : System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        for (String dir : path.split(File.pathSeparator)) {
            if (dir.isEmpty()) {
                continue;
            }
            Path candidate = Path.of(dir, name);
            if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
                return candidate;
            }
        }
        throw new SpawnException("executable not found on PATH: " + name + " (install it, or give its full path)");
    }
}
