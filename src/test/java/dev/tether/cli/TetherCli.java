package dev.tether.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs tether as a user does: a separate JVM, its own environment, exit code and both streams captured. */
public final class TetherCli {

    public record Result(int exitCode, String out, String err) {
        /** stderr's non-empty lines. */
        public List<String> errLines() {
            return err.lines().filter(l -> !l.isBlank()).toList();
        }
    }

    private TetherCli() {}

    public static List<String> command(String... args) {
        String classpath = System.getProperty("tether.test.classpath");
        if (classpath == null) {
            throw new IllegalStateException("tether.test.classpath is not set (run the tests through Maven)");
        }
        String java = ProcessHandle.current().info().command().orElse("java");
        // env --default-signal: a suite started in the background (nohup, `&` in a script) hands its children
        // SIGINT/SIGHUP ignored, and the JVM installs no handler for an ignored signal: the signal tests would
        // then test nothing. tether run by a user keeps what its shell gave it.
        List<String> command = new ArrayList<>(List.of("/usr/bin/env", "--default-signal=HUP,INT,QUIT,TERM",
                java, "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+DisplayVMOutputToStderr", "-Xshare:auto", "-cp", classpath,
                TetherCommand.class.getName()));
        command.addAll(List.of(args));
        return command;
    }

    /** Runs to completion (deadline 2 minutes) with TETHER_HOME set to {@code home}. */
    public static Result run(Path home, Map<String, String> env, String... args) throws IOException, InterruptedException {
        Path out = Files.createTempFile("tether-out", ".txt");
        Path err = Files.createTempFile("tether-err", ".txt");
        try {
            ProcessBuilder builder = new ProcessBuilder(command(args))
                    .redirectOutput(out.toFile()).redirectError(err.toFile())
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            builder.environment().put("TETHER_HOME", home.toString());
            builder.environment().putAll(env);
            Process process = builder.start();
            if (!process.waitFor(2, TimeUnit.MINUTES)) {
                process.destroyForcibly().waitFor();
                throw new AssertionError("tether " + String.join(" ", args) + " did not finish in 2 minutes");
            }
            return new Result(process.exitValue(), Files.readString(out), Files.readString(err));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    public static Result run(Path home, String... args) throws IOException, InterruptedException {
        return run(home, Map.of(), args);
    }
}
