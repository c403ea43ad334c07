package dev.tether.cli;

import static dev.tether.cli.TetherHomes.leases;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.fixtures.ExitsAtOnce;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.FirstNeverHealthy;
import dev.tether.fixtures.FlakyOpenAiServer;
import dev.tether.proc.Poll;
import dev.tether.proc.ProcFs;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
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
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --replicas N} (issue 11): a pool of servers of one spec, each tethered, requests spread over them, each
 * restarted on its own, one that cannot come back left out while the run goes on. Real fixture servers, real
 * signals.
 */
class ReplicasTest {
    private static final Duration RUN = Duration.ofMinutes(4);

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path input(int n) throws IOException {
        return TetherHomes.promptsFile(dir, n);
    }

    private static String flaky(String... args) {
        List<String> fixture = new ArrayList<>(List.of("--port", "{port}"));
        fixture.addAll(List.of(args));
        return String.join(" ", Fixture.command(FlakyOpenAiServer.class, fixture.toArray(String[]::new)));
    }

    private List<String> prompts(Path input, Path output, String command, String... more) {
        List<String> args = new ArrayList<>(List.of("run", "--task", "prompts", "--model", "m", "--command", command,
                "--input", input.toString(), "--output", output.toString(), "--grace", "1s"));
        args.addAll(List.of(more));
        return args;
    }

    private static long count(Path file) {
        return TetherHomes.lineCount(file);
    }

    /** Every input answered exactly once, none a failure record. */
    private static void assertAllAnsweredOnce(Path output, int n) throws IOException {
        List<JsonNode> records = TetherHomes.jsonLines(output);
        assertThat(records).hasSize(n).allSatisfy(r -> {
            assertThat(r.has("error")).as("failure record %s", r).isFalse();
            assertThat(r.get("generation").asText()).isEqualTo(FlakyOpenAiServer.TEXT);
        });
        assertThat(records.stream().map(r -> r.get("id").asInt()).collect(Collectors.toSet())).hasSize(n);
    }

    private static int requestsServed(Lease lease) {
        try {
            HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + lease.port() + "/stats")).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.ofString());
            return new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.body()).get("requests").asInt();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    @Test
    void threeReplicasShareTheWorkAndAreAllGoneAfterTheRun() throws Exception {
        int n = 300;   // 200 ms each, 6 at a time: the run lasts about 10 s, long enough to look at it from outside
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(n), output, flaky("--delay-ms", "200"),
                "--replicas", "3", "--concurrency", "2").toArray(String[]::new));
        List<Lease> pool = run.awaitReadyLeases(3);
        var ps = TetherCli.run(tethers.home(), "ps");
        assertThat(run.process.isAlive()).as("the run outlived ps").isTrue();
        assertThat(ps.out()).contains("POOL").contains(pool.getFirst().placement().group() + " 1/3")
                .contains(pool.getFirst().placement().group() + " 3/3");
        assertThat(pool.stream().map(Lease::port).distinct()).as("one port each").hasSize(3);
        assertThat(pool).allSatisfy(l -> {
            assertThat(l.placement()).isNotNull();
            assertThat(l.placement().count()).isEqualTo(3);
            assertThat(l.placement().group()).isEqualTo(pool.getFirst().placement().group());
        });
        assertThat(pool.stream().map(l -> l.placement().index())).containsExactlyInAnyOrder(1, 2, 3);
        // Every replica gets requests while the run goes on (least outstanding spreads them).
        assertThat(Poll.until(() -> pool.stream().allMatch(l -> requestsServed(l) >= 3) || !run.process.isAlive(), RUN,
                Duration.ofMillis(50))).isTrue();
        assertThat(pool).as("each replica served requests before the run ended\nstderr:\n%s", run.err())
                .allSatisfy(l -> assertThat(requestsServed(l)).isGreaterThanOrEqualTo(3));

        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isZero();
        assertThat(run.out()).contains("Done.");
        assertThat(run.out().lines().filter(l -> l.startsWith("Ready: "))).hasSize(3);
        assertAllAnsweredOnce(output, n);
        assertThat(leases(tethers.home())).isEmpty();
        pool.forEach(l -> TetherHomes.assertServerGone(tethers.home(), l));
    }

    @Test
    void aReplicaKilledMidRunIsRestartedOnItsOwnAndTheRunCompletesExactlyOnce() throws Exception {
        int n = 120;
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(n), output, flaky("--delay-ms", "100"),
                "--replicas", "3", "--concurrency", "2").toArray(String[]::new));
        List<Lease> pool = run.awaitReadyLeases(3);
        assertThat(Poll.until(() -> count(output) >= 10 || !run.process.isAlive(), RUN, Duration.ofMillis(10))).isTrue();
        Lease victim = pool.get(1);
        assertThat(Signaller.send(victim.server(), Signal.KILL)).isEqualTo(Signaller.Outcome.SENT);

        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isZero();
        String name = "replica " + victim.placement().index() + " of 3 for m";
        assertThat(run.err().lines().filter(l -> l.contains("is gone"))).singleElement().satisfies(l ->
                assertThat(l).contains(name).contains("restarting it (1 of 3 restarts)"));
        assertThat(run.err()).doesNotContain("dropped");
        assertThat(run.out().lines().filter(l -> l.startsWith("Starting server"))).as("3 starts and one restart").hasSize(4);
        assertAllAnsweredOnce(output, n);
        assertThat(leases(tethers.home())).isEmpty();
    }

    @Test
    void aReplicaStoppedFromOutsideIsDroppedAndTheRunGoesOnWithTheOthers() throws Exception {
        int n = 120;
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(n), output, flaky("--delay-ms", "100"),
                "--replicas", "2", "--concurrency", "2").toArray(String[]::new));
        List<Lease> pool = run.awaitReadyLeases(2);
        assertThat(Poll.until(() -> count(output) >= 10 || !run.process.isAlive(), RUN, Duration.ofMillis(10))).isTrue();
        Lease stopped = pool.getFirst();
        var stop = TetherCli.run(tethers.home(), "stop", stopped.id());
        assertThat(stop.exitCode()).as(stop.err()).isZero();

        assertThat(run.awaitExit(RUN)).as("exit\nstdout:\n%s\nstderr:\n%s", run.out(), run.err()).isZero();
        assertThat(run.err().lines().filter(l -> l.contains("dropped"))).singleElement().satisfies(l -> assertThat(l)
                .contains("replica " + stopped.placement().index() + " of 2 for m is dropped")
                .contains("stopped from outside by `tether stop`").contains("the run goes on with 1 replica"));
        assertThat(run.err()).doesNotContain("restarting");
        assertAllAnsweredOnce(output, n);
        assertThat(leases(tethers.home())).isEmpty();
    }

    @Test
    void killNineOfTetherTakesEveryReplicaWithIt() throws Exception {
        Path output = dir.resolve("gens.jsonl");
        var run = tethers.start(dir, prompts(input(400), output, flaky("--delay-ms", "200"),
                "--replicas", "3", "--concurrency", "1").toArray(String[]::new));
        List<Lease> pool = run.awaitReadyLeases(3);
        run.process.destroyForcibly();   // SIGKILL: no hook runs; each replica's shim must stop its tree
        assertThat(run.process.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        assertThat(Poll.until(() -> pool.stream().noneMatch(l -> l.server().isAlive() || l.shim().isAlive()),
                TetherHomes.UP, Duration.ofMillis(20))).as("every replica's tree and shim gone").isTrue();
        pool.forEach(l -> assertThat(dev.tether.proc.PortListeners.isListening(l.port())).as("port %d free", l.port()).isFalse());
        assertThat(Poll.until(() -> leases(tethers.home()).isEmpty(), TetherHomes.UP)).as("leases removed by the shims").isTrue();
    }

    @Test
    void aReplicaThatNeverGetsHealthyIsLeftOutAndTheRunGoesOnWithTheRest() throws Exception {
        int n = 30;
        Path output = dir.resolve("gens.jsonl");
        String command = String.join(" ", Fixture.command(FirstNeverHealthy.class, "--claim", dir.resolve("claim").toString(),
                "--port", "{port}", "--delay-ms", "20"));
        var result = TetherCli.run(tethers.home(), prompts(input(n), output, command, "--replicas", "3",
                "--startup-timeout", "40s").toArray(String[]::new));

        assertThat(result.exitCode()).as("exit\nstdout:\n%s\nstderr:\n%s", result.out(), result.err()).isZero();
        assertThat(result.errLines()).filteredOn(l -> l.contains("failed to start")).singleElement().satisfies(l ->
                assertThat(l).containsPattern("replica [123] of 3 for m failed to start").contains("the run goes on with 2 replicas"));
        assertThat(result.out().lines().filter(l -> l.startsWith("Ready: "))).hasSize(2);
        assertAllAnsweredOnce(output, n);
        assertThat(leases(tethers.home())).isEmpty();
        TetherHomes.assertNoProcessesOf(tethers.home());
    }

    @Test
    void whenNoReplicaStartsTheRunFailsWithExit3() throws Exception {
        String command = String.join(" ", Fixture.command(ExitsAtOnce.class, "--code", "7", "--message", "no-GPU-here"));
        var result = TetherCli.run(tethers.home(), prompts(input(3), dir.resolve("gens.jsonl"), command,
                "--replicas", "2").toArray(String[]::new));
        assertThat(result.exitCode()).as(result.err()).isEqualTo(ExitCode.SERVER_FAILED);
        assertThat(result.errLines()).filteredOn(l -> l.startsWith("tether: ")).hasSize(2).anySatisfy(l -> assertThat(l)
                .contains("none of the 2 replicas for m started; replica 1 of 2: the server exited with code 7"))
                .anySatisfy(l -> assertThat(l).contains("replica 2 of 2 for m failed to start too"));
        assertThat(result.err()).contains("no-GPU-here");
        assertThat(leases(tethers.home())).isEmpty();
    }

    @Test
    void serveReplicasGetTheirOwnGpuSliceAndOneReadyLineEach() throws Exception {
        var serve = tethers.start(dir, "serve", "--command", flaky(), "--replicas", "2", "--gpus", "0,1,2,3",
                "--gpus-per-replica", "2", "--grace", "1s");
        List<Lease> pool = serve.awaitReadyLeases(2);
        serve.awaitLine("Serving 2 replicas", TetherHomes.UP);
        assertThat(serve.out().lines().filter(l -> l.startsWith("Ready: "))).hasSize(2);
        Map<Integer, String> gpus = pool.stream().collect(Collectors.toMap(l -> l.placement().index(),
                l -> l.placement().env().get("CUDA_VISIBLE_DEVICES")));
        assertThat(gpus).containsExactlyInAnyOrderEntriesOf(Map.of(1, "0,1", 2, "2,3"));
        for (Lease l : pool) {
            assertThat(ProcFs.environContains(l.server().pid(), "CUDA_VISIBLE_DEVICES=" + gpus.get(l.placement().index())))
                    .as("the server process of %s has its slice", l.placement().label()).isTrue();
        }
        var json = TetherCli.run(tethers.home(), "ps", "--json");
        assertThat(json.out()).contains("\"gpus\" : \"0,1\"").contains("\"replicas\" : 2");

        assertThat(Signaller.send(serve.identity(), Signal.TERM)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(serve.awaitExit(RUN)).isEqualTo(ExitCode.TERMINATED);
        pool.forEach(l -> TetherHomes.assertServerGone(tethers.home(), l));
    }

    @Test
    void execGivesTheJobOneUrlThatSpreadsOverTheReplicasAndEachReplicaInTetherUrls() throws Exception {
        Path seen = dir.resolve("seen.txt");
        Path stream = dir.resolve("stream.txt");
        // The job: 10 requests to OPENAI_BASE_URL (the proxy), one streamed, then each replica's own request count.
        String job = "for i in 1 2 3 4 5 6 7 8 9 10; do curl -sf \"$OPENAI_BASE_URL/completions\" -H 'Content-Type: application/json' "
                + "-d '{\"model\":\"m\",\"prompt\":\"hi\"}' >/dev/null || exit 9; done; "
                + "curl -sfN \"$OPENAI_BASE_URL/completions\" -d '{\"model\":\"m\",\"prompt\":\"hi\",\"stream\":true}' > " + stream + " || exit 8; "
                + "echo \"$TETHER_URLS|$OPENAI_BASE_URL|$TETHER_URL_M\" > " + seen + "; "
                + "for u in $(echo $TETHER_URLS | tr , ' '); do curl -sf $u/stats >> " + seen + "; echo >> " + seen + "; done";
        var result = TetherCli.run(tethers.home(), "exec", "--model", "m", "--command", flaky(), "--replicas", "2", "--",
                "/bin/sh", "-c", job);
        assertThat(result.exitCode()).as(result.err()).isZero();
        List<String> lines = Files.readAllLines(seen);
        String[] parts = lines.getFirst().split("\\|");
        String[] urls = parts[0].split(",");
        assertThat(urls).hasSize(2).allSatisfy(u -> assertThat(u).startsWith("http://127.0.0.1:"));
        assertThat(Set.of(urls)).hasSize(2);
        assertThat(parts[1]).as("the job's one URL is the proxy, not a replica").endsWith("/v1")
                .isNotIn(urls[0] + "/v1", urls[1] + "/v1");
        assertThat(parts[2] + "/v1").isEqualTo(parts[1]);
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<Integer> served = lines.subList(1, 3).stream().map(l -> {
            try {
                return json.readTree(l).get("requests").asInt();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }).toList();
        assertThat(served).as("both replicas answered the job's requests").allSatisfy(n -> assertThat(n).isPositive());
        assertThat(served.get(0) + served.get(1)).isEqualTo(11);
        assertThat(Files.readString(stream)).contains("data: ").contains("data: [DONE]");
        assertThat(leases(tethers.home())).isEmpty();
    }

    @Test
    void replicaOptionsThatCannotWorkAreOneLineAndExit2() throws Exception {
        Path in = input(2);
        Path out = dir.resolve("gens.jsonl");
        record Case(List<String> args, Map<String, String> env, String says) {}
        Path fakeBin = dir.resolve("bin");
        Files.createDirectories(fakeBin);
        Path smi = fakeBin.resolve("nvidia-smi");
        Files.writeString(smi, "#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-aaaa)'\necho 'GPU 1: Fake GPU (UUID: GPU-bbbb)'\n");
        smi.toFile().setExecutable(true);
        List<Case> cases = List.of(
                new Case(List.of("--replicas", "0"), Map.of(), "--replicas must be from 1 to 64, not 0"),
                new Case(List.of("--replicas", "2", "--port", "8123"), Map.of(), "drop --port 8123"),
                new Case(List.of("--replicas", "2", "--gpus-per-replica", "1", "--gpus", "0"), Map.of(),
                        "2 replicas of 1 GPU need 2 GPUs, and --gpus gives 1 (0)"),
                new Case(List.of("--replicas", "2", "--gpus-per-replica", "2"),
                        Map.of("PATH", fakeBin + ":" + System.getenv("PATH")), "need 4 GPUs, and nvidia-smi -L gives 2 (0,1)"),
                new Case(List.of("--replicas", "2", "--url", "http://127.0.0.1:9"), Map.of(), "--replicas"));
        for (Case c : cases) {
            List<String> args = prompts(in, out, flaky(), c.args().toArray(String[]::new));
            if (c.args().contains("--url")) {
                args.removeAll(List.of("--command", flaky(), "--grace", "1s"));
            }
            var result = TetherCli.run(tethers.home(), c.env(), args.toArray(String[]::new));
            assertThat(result.exitCode()).as("%s: %s", c.args(), result.err()).isEqualTo(ExitCode.USAGE);
            assertThat(result.errLines()).as("%s", c.args()).singleElement().satisfies(l -> assertThat(l).contains(c.says()));
        }
        assertThat(leases(tethers.home())).isEmpty();
        assertThat(Files.exists(out)).isFalse();
    }
}
