package dev.tether.reliability;

import static dev.tether.cli.TetherHomes.assertNoProcessesOf;
import static dev.tether.cli.TetherHomes.healthServer;
import static dev.tether.cli.TetherHomes.noFilesIn;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.cli.BackgroundTether;
import dev.tether.cli.TetherHomes;
import dev.tether.cli.Tethers;
import dev.tether.fixtures.ExitsAtOnce;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FlakyOpenAiServer;
import dev.tether.fixtures.HealthServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The bad-input suite: tether run as a user runs it (a separate JVM, a temporary TETHER_HOME) with bad command
 * lines, bad config files, bad data files and bad servers. For each case: the exit code of DESIGN 1; stderr's
 * message is one line starting {@code tether: } (for exit 3, that line followed by the end of the server's log),
 * with no stack trace; nothing was lost (every file that existed is unchanged byte for byte, or — for an output
 * file the run appends to — still starts with everything it held); no lease file and no process of the home left.
 * Every case adds a row to {@code target/reliability/bad-inputs.md}.
 */
class BadInputsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration DEADLINE = Duration.ofMinutes(2);
    private static final List<Row> ROWS = Collections.synchronizedList(new ArrayList<>());
    private static final AtomicInteger ORDER = new AtomicInteger();

    private record Row(int order, String name, String command, int exit, String message, String lost) {}

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path home() {
        return dir.resolve("home");
    }

    @AfterAll
    static void writeTheTable() {
        if (ROWS.isEmpty()) {
            return;
        }
        StringBuilder md = new StringBuilder("| # | case | command (short) | exit | message (first stderr line) | lost anything? |\n"
                + "|---|---|---|---|---|---|\n");
        List<Row> rows = new ArrayList<>(ROWS);
        rows.sort(Comparator.comparingInt(Row::order));
        int i = 1;
        for (Row r : rows) {
            md.append("| ").append(i++).append(" | ").append(cell(r.name)).append(" | `").append(r.command.replace("|", "\\|").replace("`", "'"))
                    .append("` | ").append(r.exit).append(" | ").append(cell(r.message)).append(" | ").append(cell(r.lost)).append(" |\n");
        }
        Reliability.report("bad-inputs", md.toString());
    }

    private static String cell(String text) {
        return text.replace("|", "\\|").replace("\n", " ");
    }

    // ---- the cases ----

    /** What a case gets to prepare its files with: all under the test's temporary directory. */
    final class Ctx {
        final Set<Path> outputs = new HashSet<>();
        Path work;

        Path path(String name) {
            return dir.resolve(name);
        }

        String file(String name, String content) throws IOException {
            return bytes(name, content.getBytes(StandardCharsets.UTF_8));
        }

        String bytes(String name, byte[] content) throws IOException {
            Path p = dir.resolve(name);
            Files.createDirectories(p.getParent());
            Files.write(p, content);
            return p.toString();
        }

        String mkdir(String name) throws IOException {
            return Files.createDirectories(dir.resolve(name)).toString();
        }

        /** An output file the run may append to: its earlier content must stay (as a prefix), not byte-equal. */
        String output(String name, String content) throws IOException {
            String p = file(name, content);
            outputs.add(Path.of(p));
            return p;
        }

        String prompts() throws IOException {
            return file("prompts.jsonl", "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":2,\"prompt\":\"b\"}\n{\"id\":3,\"prompt\":\"c\"}\n");
        }

        /** tether.yaml in a working directory of its own, where tether runs for this case. */
        void yaml(String content) throws IOException {
            work = Files.createDirectories(dir.resolve("work"));
            Files.writeString(work.resolve("tether.yaml"), content);
        }
    }

    interface Setup {
        List<String> args(Ctx c) throws Exception;
    }

    /** Extra checks after the run (the output's records, say). */
    interface Check {
        void check(Ctx c, BackgroundTether t) throws Exception;
    }

    record Case(String name, int exit, String message, Setup setup, Check check) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static Case c(String name, int exit, String message, Setup setup) {
        return new Case(name, exit, message, setup, (c, t) -> {});
    }

    private static Case c(String name, int exit, String message, Setup setup, Check check) {
        return new Case(name, exit, message, setup, check);
    }

    private static List<String> a(String... args) {
        return List.of(args);
    }

    private static String fixture(Class<?> main, String... args) {
        return String.join(" ", Fixture.command(main, args));
    }

    private static String flaky(String... args) {
        List<String> all = new ArrayList<>(List.of("--port", "{port}"));
        all.addAll(List.of(args));
        return fixture(FlakyOpenAiServer.class, all.toArray(String[]::new));
    }

    private static List<String> prompts(String input, String... more) {
        List<String> all = new ArrayList<>(List.of("run", "--task", "prompts", "--model", "tiny", "--input", input));
        all.addAll(List.of(more));
        return all;
    }

    /** prompts against a FlakyOpenAiServer misbehaving as told, output in out.jsonl. */
    private static List<String> flakyRun(Ctx c, String... flakyArgs) throws IOException {
        return List.of("run", "--task", "prompts", "--model", "m", "--command", flaky(flakyArgs), "--input", c.prompts(),
                "--output", c.path("out.jsonl").toString(), "--port", "auto", "--retries", "1", "--request-timeout", "2s");
    }

    private static List<String> wiki(Ctx c, String... more) {
        List<String> all = new ArrayList<>(List.of("run", "--task", "precisewikiqa", "--model", "tiny", "--output-dir",
                c.path("out").toString()));
        all.addAll(List.of(more));
        return all;
    }

    private static List<String> serve(String... args) {
        List<String> all = new ArrayList<>(List.of("serve"));
        all.addAll(List.of(args));
        return all;
    }

    /** Three failure records of the given kind in out.jsonl, and stdout says so. */
    private static Check failureRecords(String kind) {
        return (c, t) -> {
            List<JsonNode> records = TetherHomes.jsonLines(c.path("out.jsonl"));
            assertThat(records).hasSize(3).allSatisfy(r -> {
                assertThat(r.get("generation").isNull()).isTrue();
                if (kind != null) {
                    assertThat(r.get("error").get("kind").asText()).isEqualTo(kind);
                }
            });
            assertThat(t.out()).contains("3 failed");
        };
    }

    static Stream<Case> cases() {
        String ok = healthServer();
        return Stream.of(
                // ---- the command line ----
                c("unknown option", 2, "Unknown option: '--bogus'", x -> prompts(x.prompts(), "--bogus")),
                c("unknown task", 2, "unknown task 'nope'", x -> a("run", "--task", "nope", "--model", "tiny")),
                c("unknown step", 2, "unknown step 'cook'", x -> wiki(x, "--step", "cook")),
                c("--N 0", 2, "--N must be a positive number", x -> wiki(x, "--N", "0")),
                c("--N negative", 2, "--N must be a positive number", x -> wiki(x, "--N", "-3")),
                c("--N not a number", 2, "--N", x -> wiki(x, "--N", "ten")),
                c("--concurrency 0", 2, "--concurrency must be at least 1", x -> prompts(x.prompts(), "--concurrency", "0")),
                c("--max-tokens not a number", 2, "--max-tokens", x -> prompts(x.prompts(), "--max-tokens", "ten")),
                c("--request-timeout not a duration", 2, "--request-timeout", x -> prompts(x.prompts(), "--request-timeout", "soon")),
                c("--port not a number", 2, "--port must be", x -> serve("--command", ok, "--port", "http")),
                c("--port 70000", 2, "--port must be", x -> serve("--command", ok, "--port", "70000")),
                c("--port 0", 2, "--port must be", x -> serve("--command", ok, "--port", "0")),
                c("--port negative", 2, "--port must be", x -> serve("--command", ok, "--port", "-1")),
                c("run --port 70000", 2, "--port must be", x -> prompts(x.prompts(), "--port", "70000")),
                c("unknown profile (serve)", 2, "unknown profile 'nope'", x -> serve("--model", "m", "--profile", "nope")),
                c("unknown profile (run)", 2, "unknown profile 'nope'", x -> a("run", "--task", "precisewikiqa", "--model", "m",
                        "--profile", "nope", "--output-dir", x.path("out").toString())),
                c("missing server executable", 2, "/no/such/server", x -> serve("--command", "/no/such/server --port {port}")),
                c("missing server executable on PATH", 2, "no-such-server-xyz", x -> serve("--command", "no-such-server-xyz --port {port}")),
                c("unknown placeholder", 2, "{nope}", x -> serve("--command", ok + " --x {nope}")),
                c("unbalanced quote", 2, "unbalanced", x -> serve("--command", ok + " 'open")),
                c("--command with --profile", 2, "cannot be combined", x -> serve("--command", ok, "--profile", "vllm")),
                c("--ctx for vllm", 2, "--max-model-len", x -> serve("--profile", "vllm", "--model", "m", "--ctx", "4096")),
                c("--parallel for a --command", 2, "write the server's own flag into --command", x -> serve("--command", ok, "--parallel", "2")),
                c("--executable for embedded", 2, "tether's own", x -> serve("--model", "tiny", "--executable", "/bin/true")),
                c("--ctx too small for the slots", 2, "at least 16 tokens per slot", x -> serve("--model", "tiny", "--ctx", "32")),
                c("a word before -- (serve)", 2, "unexpected argument 'stray'", x -> serve("--model", "tiny", "stray")),
                c("no server named (serve)", 2, "--profile", x -> serve("--model", "some-model")),
                c("no server named (run)", 2, "which server should run", x -> a("run", "--task", "precisewikiqa",
                        "--model", "nope-model", "--output-dir", x.path("out").toString())),
                c("prompts without --input", 2, "needs --input", x -> a("run", "--task", "prompts", "--model", "tiny")),
                c("stop an unknown id", 2, "no-such-id", x -> a("stop", "no-such-id")),
                c("logs of an unknown id", 2, "no log for server no-such-id", x -> a("logs", "no-such-id")),
                c("port not a number", 2, "http", x -> a("port", "http")),
                c("port 70000", 2, "70000", x -> a("port", "70000")),
                c("stop --port 0", 2, "0", x -> a("stop", "--port", "0")),

                // ---- config files (tether.yaml) ----
                c("tether.yaml not valid YAML", 2, "not valid YAML", x -> {
                    x.yaml("profiles:\n  broken: [unclosed\n");
                    return serve("--model", "m", "--profile", "broken", "--port", "auto");
                }),
                c("tether.yaml wrong type", 2, "tether.yaml", x -> {
                    x.yaml("profiles:\n  mine:\n    command: 5\n");
                    return serve("--model", "m", "--profile", "mine", "--port", "auto");
                }),
                c("tether.yaml bad startup-timeout", 2, "startup-timeout", x -> {
                    x.yaml("profiles:\n  mine:\n    command: [\"" + String.join("\", \"", Fixture.command(HealthServer.class,
                            "--port", "{port}")) + "\"]\n    startup-timeout: soon\n");
                    return serve("--model", "m", "--profile", "mine", "--port", "auto");
                }),
                c("tether.yaml unknown key", 2, "unknown key 'comand'", x -> {
                    x.yaml("profiles:\n  mine:\n    comand: [\"x\"]\n");
                    return serve("--model", "m", "--profile", "mine", "--port", "auto");
                }),

                // ---- data files ----
                c("input file missing", 2, "input file not found", x -> prompts("/nonexistent.jsonl")),
                c("input is a directory", 2, "is a directory", x -> prompts(x.mkdir("indir"))),
                c("input is empty", 2, "has no prompts", x -> prompts(x.file("empty.jsonl", ""))),
                c("malformed JSONL", 2, ":2: not valid JSON", x -> prompts(x.file("bad.jsonl", "{\"prompt\":\"ok\"}\n{broken\n"))),
                c("torn last line", 2, ":2: not valid JSON", x -> prompts(x.file("torn.jsonl", "{\"prompt\":\"ok\"}\n{\"prompt\":\"cut sh"))),
                c("non-object line", 2, ":2: expected a JSON object, found array", x -> prompts(x.file("arr.jsonl",
                        "{\"prompt\":\"ok\"}\n[1, 2]\n"))),
                c("\"max_tokens\": \"ten\"", 2, ":1: \"max_tokens\" must be an integer", x -> prompts(x.file("types.jsonl",
                        "{\"prompt\":\"a\",\"max_tokens\":\"ten\"}\n"))),
                c("\"prompt\": 5", 2, ":1: \"prompt\" must be a string", x -> prompts(x.file("types.jsonl", "{\"prompt\":5}\n"))),
                c("duplicate ids", 2, "same \"id\"", x -> prompts(x.file("dup.jsonl", "{\"id\":1,\"prompt\":\"a\"}\n{\"id\":1,\"prompt\":\"b\"}\n"))),
                c("invalid UTF-8", 2, ":2: not valid UTF-8", x -> prompts(x.bytes("latin1.jsonl",
                        concat("{\"prompt\":\"ok\"}\n{\"prompt\":\"caf".getBytes(StandardCharsets.UTF_8), new byte[] {(byte) 0xE9},
                                "\"}\n".getBytes(StandardCharsets.UTF_8))))),
                c("UTF-8 byte order mark (accepted)", 0, "", x -> List.of("run", "--task", "prompts", "--model", "m",
                        "--command", flaky(), "--input", x.bytes("bom.jsonl", concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF},
                                "{\"id\":1,\"prompt\":\"a\"}\r\n{\"id\":2,\"prompt\":\"b\"}\r\n".getBytes(StandardCharsets.UTF_8))),
                        "--output", x.path("out.jsonl").toString(), "--port", "auto"),
                        (x, t) -> assertThat(TetherHomes.jsonLines(x.path("out.jsonl"))).hasSize(2)
                                .allSatisfy(r -> assertThat(r.get("generation").asText()).isEqualTo(FlakyOpenAiServer.TEXT))),
                c("wiki file missing", 2, "wiki documents not found", x -> wiki(x, "--wiki-file", "/nonexistent/docs.jsonl")),
                c("wiki file malformed", 2, "wiki.jsonl:1", x -> wiki(x, "--step", "generate", "--wiki-file",
                        x.file("wiki.jsonl", "{\"title\": \"t\", \"document\": \"d\"\n"))),
                c("questions file missing", 2, "questions file not found", x -> wiki(x, "--step", "inference")),
                c("questions file malformed", 2, "qa_goodwiki_tiny_dynamic.jsonl has 0 usable questions", x -> {
                    x.output("out/precise_qa/qa_goodwiki_tiny_dynamic.jsonl", "not json\n");
                    return wiki(x, "--step", "inference");
                }),
                c("generations missing", 2, "generations not found", x -> wiki(x, "--step", "eval")),
                c("a step the task does not have", 2, "unknown step 'generate' for --task triviaqa (known: inference, eval, all)",
                        x -> a("run", "--task", "triviaqa", "--step", "generate", "--model", "tiny")),
                c("batch: duplicate custom_id", 2, "dup.jsonl:2: the same \"custom_id\" \"a\" as line 1", x -> a("run", "--task", "batch",
                        "--model", "tiny", "--output-dir", x.path("out").toString(), "--input", x.file("dup.jsonl",
                        "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"x\"}}\n"
                                + "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/completions\",\"body\":{\"prompt\":\"y\"}}\n"))),
                c("batch: an endpoint tether does not send", 2, "b.jsonl:1: \"url\" must be", x -> a("run", "--task", "batch",
                        "--model", "tiny", "--output-dir", x.path("out").toString(), "--input", x.file("b.jsonl",
                        "{\"custom_id\":\"a\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{\"input\":\"x\"}}\n"))),
                c("--output is the input", 2, "is the input file", x -> {
                    String in = x.file("same.jsonl", "{\"prompt\":\"a\"}\n");
                    return a("run", "--task", "prompts", "--model", "tiny", "--input", in, "--output", in);
                }, (x, t) -> assertThat(x.path("same.jsonl")).hasContent("{\"prompt\":\"a\"}\n")),
                c("triviaqa: --data missing", 2, "--data file not found", x -> a("run", "--task", "triviaqa", "--model", "tiny",
                        "--output-dir", x.path("out").toString(), "--data", "/nonexistent/trivia.json")),
                c("triviaqa: --data not TriviaQA JSON", 2, "has no \"Data\"", x -> a("run", "--task", "triviaqa", "--model", "tiny",
                        "--output-dir", x.path("out").toString(), "--data", x.file("t.json", "{\"Questions\": []}"))),
                c("mixedentities: --entities-dir without lists", 2, "has none of medicine.txt", x -> a("run", "--task",
                        "mixedentities", "--model", "tiny", "--output-dir", x.path("out").toString(), "--entities-dir", x.mkdir("lists"))),
                c("mixedentities: a list too short for --N", 2, "gives only", x -> {
                    x.file("short/animal.txt", "F\tAlpha una\nF\tBeta duo\n");
                    return a("run", "--task", "mixedentities", "--model", "tiny", "--output-dir", x.path("out").toString(),
                            "--entities-dir", x.path("short").toString(), "--N", "50");
                }),

                // ---- where results go ----
                c("output dir under /proc", 2, "is not writable", x -> wiki(x).stream()
                        .map(s -> s.equals(x.path("out").toString()) ? "/proc/no-such-dir" : s).toList()),
                c("output dir is a file", 2, "is not writable", x -> {
                    String file = x.file("a-file", "keep me\n");
                    return wiki(x).stream().map(s -> s.equals(x.path("out").toString()) ? file : s).toList();
                }),
                c("--output under /proc", 2, "/proc/no-such-dir/out.jsonl", x -> prompts(x.prompts(), "--output",
                        "/proc/no-such-dir/out.jsonl")),
                c("--output is a directory", 2, "is a directory", x -> prompts(x.prompts(), "--output", x.mkdir("outdir"))),

                // ---- servers ----
                c("server exits 1 at once", 3, "the server for m failed to start", x -> List.of("run", "--task", "prompts",
                        "--model", "m", "--command", fixture(ExitsAtOnce.class, "--code", "1", "--message", "CUDA_out_of_memory"),
                        "--input", x.prompts(), "--output", x.path("out.jsonl").toString(), "--port", "auto"),
                        (x, t) -> assertThat(t.err()).contains("CUDA_out_of_memory").contains("code 1")),
                c("health never 2xx", 3, "not ready", x -> serve("--command", healthServer("--ready-after-ms", "3600000"),
                        "--port", "auto", "--startup-timeout", "2s")),
                c("port held by a foreign process", 4, "--port auto", x -> serve("--command", ok, "--port",
                        String.valueOf(FOREIGN.getLocalPort()))),
                c("server answers 500", 1, "3 records failed (prompts: 3 of 3 in ", x -> flakyRun(x, "--fail-first", "1000"),
                        failureRecords("server_error")),
                c("server answers garbage", 1, "3 records failed (prompts: 3 of 3 in ", x -> flakyRun(x, "--garbage-first", "1000"),
                        failureRecords("bad_response")),
                c("server answers the wrong JSON shape", 1, "3 records failed (prompts: 3 of 3 in ", x -> flakyRun(x, "--wrong-shape-first", "1000"),
                        failureRecords("bad_response")),
                c("server cuts its answer short", 1, "3 records failed (prompts: 3 of 3 in ", x -> flakyRun(x, "--cut-first", "1000"),
                        failureRecords(null)),
                c("server never answers", 1, "3 records failed (prompts: 3 of 3 in ", x -> flakyRun(x, "--hang-first", "1000"),
                        failureRecords("timeout")),
                c("server hangs mid-response", 1, "3 records failed (prompts: 3 of 3 in ", x -> flakyRun(x, "--stall-first", "1000"),
                        failureRecords("timeout")),
                c("earlier output kept when the server fails", 1, "2 records failed (prompts: 2 of 3 in ", x -> {
                    String done = "{\"id\":1,\"prompt\":\"a\",\"generation\":\"x\",\"finish_reason\":\"stop\",\"usage\":{}}\n";
                    x.output("out.jsonl", done);
                    return flakyRun(x, "--fail-first", "1000").stream().toList();
                }, (x, t) -> {
                    List<JsonNode> records = TetherHomes.jsonLines(x.path("out.jsonl"));
                    assertThat(records).hasSize(3);
                    assertThat(records.getFirst().get("generation").asText()).isEqualTo("x");
                }));
    }

    /** A listener of this JVM on a port: a process tether does not manage. */
    private static final ServerSocket FOREIGN = foreignListener();

    private static ServerSocket foreignListener() {
        try {
            ServerSocket socket = new ServerSocket();
            socket.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            return socket;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @AfterAll
    static void closeTheForeignListener() throws IOException {
        FOREIGN.close();
    }

    private static byte[] concat(byte[]... parts) {
        int n = Arrays.stream(parts).mapToInt(p -> p.length).sum();
        byte[] all = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, all, at, p.length);
            at += p.length;
        }
        return all;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void aBadInputIsOneClearLineTheRightExitCodeAndNothingLost(Case k) throws Exception {
        int order = ORDER.incrementAndGet();
        Ctx ctx = new Ctx();
        List<String> args = k.setup.args(ctx);
        Map<Path, byte[]> before = snapshot();
        BackgroundTether t = tethers.start(ctx.work, args.toArray(String[]::new));
        int exit = t.awaitExit(DEADLINE);
        String err = t.err();
        List<String> errLines = err.lines().filter(l -> !l.isBlank()).toList();
        String first = errLines.isEmpty() ? "(nothing on stderr)" : errLines.getFirst().trim();
        String lost = lost(before, ctx.outputs);
        ROWS.add(new Row(order, k.name, shorten(args), exit, first.replace(dir + "/", ""), lost));

        assertThat(exit).as("exit code\nstdout:\n%s\nstderr:\n%s", t.out(), err).isEqualTo(k.exit);
        if (k.exit == 0) {
            assertThat(errLines).as("nothing on stderr").isEmpty();
        } else {
            assertThat(first).as(err).startsWith("tether: ").contains(k.message);
        }
        assertThat(err).as("no stack trace").doesNotContain("Exception").doesNotContain("\tat ");
        if (k.exit != 3 && k.exit != 0) {
            assertThat(errLines).as("one line on stderr").hasSize(1);
        }
        if (k.exit == 2 || k.exit == 4) {
            assertThat(t.out()).as("nothing started").doesNotContain("Starting server");
            assertThat(noFilesIn(home().resolve("logs"))).as("no server log: nothing started").isTrue();
        }
        assertThat(lost).isEqualTo("no");
        assertThat(noFilesIn(home().resolve("leases"))).as("lease files left").isTrue();
        assertNoProcessesOf(home());
        k.check.check(ctx, t);
    }

    /** Every regular file under the test directory (but the home) and its bytes. */
    private Map<Path, byte[]> snapshot() throws IOException {
        Map<Path, byte[]> files = new LinkedHashMap<>();
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.filter(Files::isRegularFile).filter(p -> !p.startsWith(home())).toList()) {
                files.put(p, Files.readAllBytes(p));
            }
        }
        return files;
    }

    /** "no", or what was lost: a file gone or changed (an output file may only have grown). */
    private static String lost(Map<Path, byte[]> before, Set<Path> outputs) throws IOException {
        List<String> problems = new ArrayList<>();
        for (var e : before.entrySet()) {
            Path p = e.getKey();
            if (!Files.isRegularFile(p)) {
                problems.add(p.getFileName() + " gone");
                continue;
            }
            byte[] now = Files.readAllBytes(p);
            boolean kept = outputs.contains(p)
                    ? now.length >= e.getValue().length && Arrays.equals(e.getValue(), Arrays.copyOf(now, e.getValue().length))
                    : Arrays.equals(now, e.getValue());
            if (!kept) {
                problems.add(p.getFileName() + " changed");
            }
        }
        return problems.isEmpty() ? "no" : String.join(", ", problems);
    }

    /** The command line without the long fixture argvs and temporary paths. */
    private String shorten(List<String> args) {
        List<String> words = new ArrayList<>();
        for (String a : args) {
            String w = a;
            if (a.contains(" -cp ") || a.contains("-XX:")) {
                String[] parts = a.split(" ");
                int main = 0;
                for (int i = 0; i < parts.length; i++) {
                    if (parts[i].startsWith("dev.tether.fixtures.")) {
                        main = i;
                    }
                }
                w = "\"" + String.join(" ", Arrays.asList(parts).subList(main, parts.length)).replace("dev.tether.fixtures.", "") + "\"";
            } else if (a.startsWith(dir.toString())) {
                w = a.substring(dir.toString().length() + 1);
            } else if (a.contains(" ")) {
                w = "\"" + a + "\"";
            }
            words.add(w);
        }
        return "tether " + String.join(" ", words);
    }

    // ---- a disk that fills up ----

    @Test
    void aDiskThatFillsUpStopsTheRunWithOneLineAndAResumeCompletesIt() throws Exception {
        int order = ORDER.incrementAndGet() + 1000;   // after the table's cases
        Path mount = Files.createDirectories(dir.resolve("small-disk"));
        Process m = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount.toString())
                .redirectErrorStream(true).start();
        boolean mounted = m.waitFor(30, TimeUnit.SECONDS) && m.exitValue() == 0;
        if (!mounted) {
            ROWS.add(new Row(order, "disk fills up", "tether run --task prompts --output small-disk/out.jsonl", -1,
                    "SKIPPED: cannot mount a tmpfs here (" + new String(m.getInputStream().readAllBytes()).trim() + ")", "-"));
        }
        Assumptions.assumeTrue(mounted, "mount -t tmpfs failed: not root? the disk-full case is skipped");
        try {
            int n = 400;
            StringBuilder input = new StringBuilder();
            for (int i = 1; i <= n; i++) {
                input.append("{\"id\":").append(i).append(",\"prompt\":\"prompt number ").append(i).append(' ')
                        .append("x".repeat(100)).append("\"}\n");
            }
            Path in = dir.resolve("many.jsonl");
            Files.writeString(in, input);
            byte[] inputBytes = Files.readAllBytes(in);
            Path out = mount.resolve("out.jsonl");
            List<String> args = List.of("run", "--task", "prompts", "--model", "m", "--command", flaky(), "--input", in.toString(),
                    "--output", out.toString(), "--port", "auto", "--concurrency", "8");

            BackgroundTether full = tethers.start(null, args.toArray(String[]::new));
            int exit = full.awaitExit(DEADLINE);
            List<String> errLines = full.err().lines().filter(l -> !l.isBlank()).toList();
            String first = errLines.isEmpty() ? "(nothing on stderr)" : errLines.getFirst().trim();
            List<JsonNode> written = TetherHomes.jsonLines(out);   // every line already written parses
            assertNoProcessesOf(home());
            String lost = Arrays.equals(inputBytes, Files.readAllBytes(in)) ? "no" : "input changed";
            ROWS.add(new Row(order, "disk fills up (64 KiB tmpfs; " + written.size() + " of " + n + " records fit)",
                    shorten(args).replace(mount.toString(), "small-disk"), exit, first.replace(dir + "/", ""), lost));

            assertThat(exit).as("exit\nstdout:\n%s\nstderr:\n%s", full.out(), full.err()).isEqualTo(1);
            assertThat(errLines).as(full.err()).hasSize(1);
            assertThat(first).startsWith("tether: ").contains(out.toString()).containsIgnoringCase("no space left");
            assertThat(full.err()).doesNotContain("Exception").doesNotContain("\tat ");
            assertThat(written.size()).isGreaterThan(0).isLessThan(n);
            assertThat(noFilesIn(home().resolve("leases"))).isTrue();
            assertThat(lost).isEqualTo("no");

            // Free space (a bigger disk, the same files), then the same command resumes and completes.
            Process remount = new ProcessBuilder("mount", "-o", "remount,size=4m", mount.toString()).redirectErrorStream(true).start();
            assertThat(remount.waitFor(30, TimeUnit.SECONDS) && remount.exitValue() == 0)
                    .as(new String(remount.getInputStream().readAllBytes())).isTrue();
            BackgroundTether resumed = tethers.start(null, args.toArray(String[]::new));
            assertThat(resumed.awaitExit(DEADLINE)).as("resume\nstdout:\n%s\nstderr:\n%s", resumed.out(), resumed.err()).isEqualTo(0);
            List<JsonNode> all = TetherHomes.jsonLines(out);
            assertThat(all).hasSize(n);
            assertThat(all.stream().map(r -> r.get("id").asInt()).distinct().count()).isEqualTo(n);
            assertThat(all).allSatisfy(r -> assertThat(r.get("generation").asText()).isEqualTo(FlakyOpenAiServer.TEXT));
            assertThat(Files.readAllBytes(in)).isEqualTo(inputBytes);
        } finally {
            new ProcessBuilder("umount", "-l", mount.toString()).start().waitFor(30, TimeUnit.SECONDS);
        }
    }
}
