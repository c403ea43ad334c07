package dev.tether.cli;

import static dev.tether.cli.TetherHomes.UP;
import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.TakesAnyArgs;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --ctx --parallel --threads}, {@code --executable}, {@code --server-arg} and {@code -- ARGS}
 * (issue 14, item 2): the argv a server really runs with is read from {@code /proc/<pid>/cmdline} of the
 * server tether started (or from the fixture's own log line), never from what tether says it did.
 */
class ServerFlagsTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    /** A stand-in "llama-server"/"vllm" program: a script that runs the TakesAnyArgs fixture with its arguments. */
    private Path fakeServerProgram() throws IOException {
        Path script = dir.resolve("fake-server");
        String java = Fixture.command(TakesAnyArgs.class).stream().map(w -> "'" + w.replace("'", "'\\''") + "'")
                .collect(Collectors.joining(" "));
        Files.writeString(script, "#!/bin/sh\nexec " + java + " \"$@\"\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
        return script;
    }

    /** The arguments of the server's main class (after the fixture's or the engine's main class name). */
    private static List<String> serverArgs(Lease lease, String mainClass) throws IOException {
        byte[] raw = Files.readAllBytes(Path.of("/proc", String.valueOf(lease.server().pid()), "cmdline"));
        List<String> words = Arrays.asList(new String(raw, StandardCharsets.UTF_8).split("\0"));
        int main = words.indexOf(mainClass);
        assertThat(main).as("main class %s in %s", mainClass, words).isNotNegative();
        return words.subList(main + 1, words.size());
    }

    private BackgroundTether serve(String... args) throws IOException {
        List<String> all = new ArrayList<>(List.of("serve"));
        all.addAll(List.of(args));
        return tethers.start(null, all.toArray(String[]::new));
    }

    private static void stop(BackgroundTether tether) throws Exception {
        Signaller.send(tether.identity(), Signal.TERM);
        tether.awaitExit(UP);
    }

    @Test
    void llamaServerGetsItsOwnFlagsTheExecutableAndTheArgsAfterDashes() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether tether = serve("--profile", "llama-server", "--model", "my-model", "--port", String.valueOf(port),
                "--executable", fakeServerProgram().toString(), "--ctx", "2048", "--parallel", "2", "--threads", "1",
                "--server-arg=--flash-attn", "--", "--alias", "{model}-on-{port}");
        Lease lease = tether.awaitReady();
        assertThat(serverArgs(lease, TakesAnyArgs.class.getName())).containsExactly(
                "-m", "my-model", "--host", "127.0.0.1", "--port", String.valueOf(port),
                "--ctx-size", "2048", "--parallel", "2", "--threads", "1",
                "--flash-attn", "--alias", "my-model-on-" + port);
        stop(tether);
    }

    @Test
    void vllmMapsParallelToMaxNumSeqsAndTakesItsOwnFlagsAfterDashes() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether tether = serve("--profile", "vllm", "--model", "org/model", "--port", String.valueOf(port),
                "--executable", fakeServerProgram().toString(), "--parallel", "16", "--", "--max-model-len", "4096");
        Lease lease = tether.awaitReady();
        assertThat(serverArgs(lease, TakesAnyArgs.class.getName())).containsExactly(
                "serve", "org/model", "--host", "127.0.0.1", "--port", String.valueOf(port),
                "--max-num-seqs", "16", "--max-model-len", "4096");
        stop(tether);
    }

    @Test
    void theEmbeddedEngineRunsWithTheContextSlotsAndThreadsGiven() throws Exception {
        BackgroundTether tether = serve("--model", "tiny", "--port", "auto", "--ctx", "2048", "--parallel", "2",
                "--threads", "1");
        Lease lease = tether.awaitReady();
        List<String> args = serverArgs(lease, "dev.tether.server.embedded.EmbeddedServer");
        assertThat(String.join(" ", args)).endsWith("--ctx 2048 --parallel 2 --threads 1");
        // The engine itself says what it made of them (just after it starts answering /health 200: poll for the line).
        Path log = Path.of(lease.logPath());
        assertThat(dev.tether.proc.Poll.until(() -> lines(log).anyMatch(l -> l.contains("parallel slots of")), UP))
                .as("the engine's ready line").isTrue();
        assertThat(Files.readString(log)).contains("(2 parallel slots of 1024 tokens)");
        stop(tether);
    }

    @Test
    void execTakesServerArgsAndTheJobStillGetsItsOwnArgv() throws Exception {
        Path seen = dir.resolve("job-saw.txt");
        TetherCli.Result r = TetherCli.run(tethers.home(), "exec", "--profile", "llama-server", "--model", "my-model",
                "--port", "auto", "--executable", fakeServerProgram().toString(), "--server-arg", "--jinja",
                "--server-arg=--temp", "--server-arg", "0.5", "--",
                "/bin/sh", "-c", "echo \"$0 $TETHER_PORT\" > " + seen, "job-arg");
        assertThat(r.exitCode()).as(r.err()).isZero();
        String[] job = Files.readString(seen).strip().split(" ");
        assertThat(job[0]).isEqualTo("job-arg");
        // The server is gone (exec stopped it); its log keeps the argv the fixture printed.
        try (Stream<Path> logs = Files.walk(tethers.home())) {
            List<String> argvLines = logs.filter(Files::isRegularFile).flatMap(ServerFlagsTest::lines)
                    .filter(l -> l.startsWith("argv: ")).toList();
            assertThat(argvLines).containsExactly("argv: -m my-model --host 127.0.0.1 --port " + job[1]
                    + " --jinja --temp 0.5");
        }
    }

    @Test
    void runPassesTheSettingsAndTheArgsAfterDashesToTheEngine() throws Exception {
        Path input = Files.writeString(dir.resolve("in.jsonl"), "{\"prompt\":\"a\"}\n{\"prompt\":\"b\"}\n");
        Path output = dir.resolve("out.jsonl");
        TetherCli.Result r = TetherCli.run(tethers.home(), "run", "--task", "prompts", "--model", "tiny", "--input",
                input.toString(), "--output", output.toString(), "--max-tokens", "2", "--port", "auto", "--parallel", "2",
                "--", "--ctx", "4096");
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(Files.readAllLines(output)).hasSize(2);
        // The engine's own line: --parallel 2 from the option, --ctx 4096 from after --, so 2 slots of 2048.
        try (Stream<Path> logs = Files.walk(tethers.home())) {
            assertThat(logs.filter(Files::isRegularFile).flatMap(ServerFlagsTest::lines)
                    .filter(l -> l.contains("parallel slots of"))).singleElement().asString()
                    .contains("(2 parallel slots of 2048 tokens)");
        }
    }

    private static Stream<String> lines(Path file) {
        try {
            return Files.readAllLines(file).stream();
        } catch (IOException e) {
            return Stream.empty();   // not text
        }
    }

    @Test
    void settingsAProfileCannotTakeAreUsageErrorsOfOneLine() throws Exception {
        record Case(List<String> args, String says) {}
        List<Case> cases = List.of(
                new Case(List.of("serve", "--profile", "vllm", "--model", "m", "--ctx", "4096"), "--max-model-len"),
                new Case(List.of("serve", "--profile", "vllm", "--model", "m", "--threads", "4"), "cannot take --threads"),
                new Case(List.of("serve", "--command", "srv --port {port}", "--parallel", "2"), "write the server's own flag into --command"),
                new Case(List.of("serve", "--model", "tiny", "--executable", "/bin/true"), "tether's own"),
                new Case(List.of("serve", "--command", "srv --port {port}", "--executable", "/bin/true"), "first word"),
                new Case(List.of("serve", "--model", "tiny", "--ctx", "32"), "at least 16 tokens per slot"),
                new Case(List.of("serve", "--model", "tiny", "--parallel", "0"), "--parallel must be at least 1"),
                new Case(List.of("serve", "--model", "tiny", "stray"), "unexpected argument 'stray'"),
                new Case(List.of("serve", "--profile", "vllm", "--model", "m", "--executable", dir.resolve("nope").toString()),
                        "nope"),
                new Case(List.of("run", "--task", "prompts", "--input", "in.jsonl", "--model", "tiny",
                        "--url", "http://127.0.0.1:9", "--parallel", "2"), "--parallel"),
                new Case(List.of("run", "--task", "prompts", "--input", "in.jsonl", "--model", "tiny",
                        "--url", "http://127.0.0.1:9", "--", "--x"), "after --"),
                new Case(List.of("exec", "--url", "http://127.0.0.1:9", "--server-arg", "x", "--", "true"), "--server-arg"));
        for (Case c : cases) {
            expectUsageError(c.args(), c.says());
        }
        Files.createDirectories(tethers.home());
        Files.writeString(tethers.home().resolve("tether.yaml"), "profiles:\n  mine:\n    command: srv --port {port}\n"
                + "  vllm:\n    command: my-vllm serve {model} --port {port}\n");
        expectUsageError(List.of("serve", "--profile", "mine", "--threads", "2"), "flags of a tether.yaml profile");
        // A tether.yaml profile that reuses a built-in's name is the user's command: its flags are unknown too.
        expectUsageError(List.of("serve", "--profile", "vllm", "--model", "m", "--parallel", "2"), "flags of a tether.yaml profile");
    }

    private void expectUsageError(List<String> args, String says) throws Exception {
        TetherCli.Result r = TetherCli.run(tethers.home(), args.toArray(String[]::new));
        assertThat(r.exitCode()).as("%s\n%s", args, r.err()).isEqualTo(2);
        assertThat(r.errLines()).as("%s", args).hasSize(1);
        assertThat(r.err()).as("%s", args).contains(says);
    }
}
