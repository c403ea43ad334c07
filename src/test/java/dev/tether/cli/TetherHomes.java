package dev.tether.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.HealthServer;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import dev.tether.server.LeaseStore;
import dev.tether.server.TetherHome;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** Shared helpers of the tests that run tether as separate JVMs under a temporary TETHER_HOME. */
public final class TetherHomes {
    /** How long a server may take to be ready in a test. */
    public static final Duration UP = Duration.ofSeconds(60);
    /** How long the watchdog (the shim) may take to notice a dead tether and stop the tree. */
    public static final Duration WATCHDOG = Duration.ofSeconds(15);

    /** The {@code --command} template of a HealthServer on {port} (fixture argv words never need quoting). */
    public static String healthServer(String... args) {
        List<String> all = new ArrayList<>(List.of("--port", "{port}"));
        all.addAll(List.of(args));
        return String.join(" ", Fixture.command(HealthServer.class, all.toArray(String[]::new)));
    }

    public static int status(String url) {
        try (HttpClient http = HttpClient.newHttpClient()) {
            return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (Exception e) {
            return -1;
        }
    }

    public static List<Lease> leases(Path home) {
        return new LeaseStore(new TetherHome(home)).list();
    }

    public static boolean noFilesIn(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return true;
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.noneMatch(p -> !p.getFileName().toString().equals(".lock"));
        }
    }

    /**
     * Every live process started under this TETHER_HOME: tether JVMs run with it, and the shims and servers
     * they start (tether puts TETHER_HOME into each shim's environment, which its server inherits). Unlike
     * LeakCheck, this also sees what was re-parented away from the test JVM when a tether JVM was killed.
     */
    public static List<ProcessIdentity> processesOf(Path home) {
        int self = (int) ProcessHandle.current().pid();
        String value = home.toAbsolutePath().toString();
        List<ProcessIdentity> found = new ArrayList<>();
        for (int pid : ProcFs.pids()) {
            if (pid != self && ProcFs.environValue(pid, TetherHome.ENV).filter(value::equals).isPresent()) {
                ProcessIdentity.of(pid).filter(ProcessIdentity::isAlive).ifPresent(found::add);
            }
        }
        return found;
    }

    /** Fails if any process of this home is alive, after SIGKILLing them all (so later tests start clean). */
    public static void assertNoProcessesOf(Path home) {
        // A watchdog may still be finishing after a test's last SIGKILL: give it a moment, then judge.
        Poll.until(() -> processesOf(home).isEmpty(), Duration.ofSeconds(5), Duration.ofMillis(20));
        List<ProcessIdentity> left = processesOf(home);
        if (left.isEmpty()) {
            return;
        }
        List<String> described = left.stream().map(id -> id + ": " + ProcFs.commandLine(id.pid())).toList();
        left.forEach(id -> Signaller.send(id, Signal.KILL));
        Poll.until(() -> left.stream().noneMatch(ProcessIdentity::isAlive), Duration.ofSeconds(10));
        throw new AssertionError("processes of " + home + " left running (now SIGKILLed):\n  " + String.join("\n  ", described));
    }

    /** The tree, shim, lease file and port of a server are all gone. */
    public static void assertServerGone(Path home, Lease lease) {
        assertThat(new ProcessTree(lease.membership()).members()).as("members of %s", lease.id()).isEmpty();
        assertThat(lease.shim() == null || !lease.shim().isAlive()).as("shim of %s alive", lease.id()).isTrue();
        assertThat(home.resolve("leases").resolve(lease.id() + ".json")).doesNotExist();
        assertThat(PortListeners.isListening(lease.port())).as("port %d listens", lease.port()).isFalse();
    }

    /** Sends SIGSTOP with the real kill(1), so a process cannot react to what happens next. */
    public static void freeze(ProcessIdentity process) throws Exception {
        Process kill = new ProcessBuilder("/bin/kill", "-STOP", String.valueOf(process.pid())).inheritIO().start();
        assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(Poll.until(() -> ProcFs.stat(process.pid()).map(s -> s.state() == 'T').orElse(false), Duration.ofSeconds(10)))
                .as("%s stopped", process).isTrue();
    }

    /** Every line of a JSONL output, parsed: fails on a line that does not parse (a torn line). */
    public static List<com.fasterxml.jackson.databind.JsonNode> jsonLines(Path file) throws IOException {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<com.fasterxml.jackson.databind.JsonNode> records = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            records.add(json.readTree(line));
        }
        return records;
    }

    private TetherHomes() {}

    /** {@code dir/prompts.jsonl}: n lines {@code {"id":i,"prompt":"pi"}}, for a prompts run. */
    public static Path promptsFile(Path dir, int n) throws IOException {
        Path input = dir.resolve("prompts.jsonl");
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < n; i++) {
            lines.append("{\"id\":").append(i).append(",\"prompt\":\"p").append(i).append("\"}\n");
        }
        Files.writeString(input, lines);
        return input;
    }

    /** Lines in a file being written (0 while it does not exist or cannot be read yet): what a run has output so far. */
    public static long lineCount(Path file) {
        try {
            return Files.exists(file) ? Files.readAllLines(file).size() : 0;
        } catch (IOException e) {
            return 0;
        }
    }
}
