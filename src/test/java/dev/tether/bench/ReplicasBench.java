package dev.tether.bench;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FlakyOpenAiServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code bench/run replicas [records-per-replica] [delay-ms] [counts]} (issue 11): records/s of
 * {@code tether run --task prompts --replicas N} against N replicas of a fixture server that takes a fixed time per
 * request (FlakyOpenAiServer --delay-ms, 50 ms by default), at --concurrency 4 per replica, for N = 1, 2, 4. The
 * figure is the prompts step's own (its summary line: records over the step's time, server starts excluded), each
 * run a real tether process as a user would start it. Goal: N replicas give at least 0.9 x N x one replica's rate.
 */
public final class ReplicasBench {
    private static final Pattern RATE = Pattern.compile("\\(([0-9.]+) records/s\\)");

    private ReplicasBench() {}

    public static void main(String[] args) throws Exception {
        int perReplica = args.length > 0 ? Integer.parseInt(args[0]) : 400;
        int delayMs = args.length > 1 ? Integer.parseInt(args[1]) : 50;
        List<Integer> counts = new ArrayList<>();
        for (String c : (args.length > 2 ? args[2] : "1,2,4").split(",")) {
            counts.add(Integer.parseInt(c.strip()));
        }
        String classpath = System.getProperty("tether.classpath");
        if (classpath == null) {
            throw new IllegalStateException("run through bench/run (it sets -Dtether.classpath)");
        }
        System.out.printf("replicas bench: %d records per replica, %d ms per request, concurrency 4 per replica; %d CPUs; "
                + "load average at start: %s%n", perReplica, delayMs, Runtime.getRuntime().availableProcessors(),
                Files.readString(Path.of("/proc/loadavg")).strip());
        Path tmp = Files.createTempDirectory("tether-replicas-bench");
        double one = 0;
        for (int n : counts) {
            int records = perReplica * n;
            Path input = tmp.resolve("in-" + n + ".jsonl");
            StringBuilder lines = new StringBuilder();
            for (int i = 0; i < records; i++) {
                lines.append("{\"id\":").append(i).append(",\"prompt\":\"p").append(i).append("\"}\n");
            }
            Files.writeString(input, lines);
            String command = String.join(" ", Fixture.command(FlakyOpenAiServer.class, "--port", "{port}", "--delay-ms",
                    String.valueOf(delayMs)));
            List<String> argv = new ArrayList<>(List.of(javaBinary(), "--enable-native-access=ALL-UNNAMED",
                    "-XX:+UseSerialGC", "-cp", classpath, "dev.tether.cli.TetherCommand", "run", "--task", "prompts",
                    "--model", "bench", "--command", command, "--input", input.toString(), "--output",
                    tmp.resolve("out-" + n + ".jsonl").toString(), "--concurrency", "4", "--replicas", String.valueOf(n),
                    "--port", "auto", "--grace", "2s"));
            ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
            pb.environment().put("TETHER_HOME", tmp.resolve("home").toString());
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes());
            int code = p.waitFor();
            Matcher m = RATE.matcher(out);
            if (code != 0 || !m.find()) {
                System.out.println("N=" + n + ": tether exited " + code + "\n" + out);
                continue;
            }
            double rate = Double.parseDouble(m.group(1));
            if (n == 1) {
                one = rate;
            }
            double ideal = 1000.0 / delayMs * 4 * n;
            System.out.printf("N=%d: %d records, %.1f records/s (ideal %.0f: %.0f %%)%s%n", n, records, rate, ideal,
                    100 * rate / ideal, one > 0 && n > 1 ? String.format("; %.2f x one replica (goal >= %.1f)", rate / one, 0.9 * n) : "");
        }
    }

    private static String javaBinary() {
        return ProcessHandle.current().info().command().orElse("java");
    }
}
