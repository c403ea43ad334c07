package dev.tether.cli;

import static dev.tether.cli.TetherHomes.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.HealthServer;
import dev.tether.proc.Poll;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.proc.Spawner;
import dev.tether.server.Job;
import dev.tether.server.Lease;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tether exec} as a user runs it: a separate JVM, real servers (the embedded tiny model, or the
 * HealthServer fixture), real jobs (sh, python3), real signals; afterwards nothing of the home is left —
 * neither the server's tree nor the job's.
 */
class ExecCommandTest {

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    Path home() {
        return tethers.home();
    }

    private BackgroundTether exec(String... args) throws IOException {
        List<String> all = new ArrayList<>(List.of("exec"));
        all.addAll(List.of(args));
        return tethers.start(dir, all.toArray(String[]::new));
    }

    private static boolean hasPython() {
        try {
            Spawner.resolveExecutable("python3", null);
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    private Path script(String name, String text) throws IOException {
        return Files.writeString(dir.resolve(name), text);
    }

    /** The job's lease once its root is running (and has at least {@code members} live members). */
    private Lease awaitJob(BackgroundTether tether, int members) {
        Lease[] found = new Lease[1];
        Poll.until(() -> {
            found[0] = leases(home()).stream().filter(l -> Job.KIND.equals(l.profile()) && l.server() != null)
                    .findFirst().orElse(null);
            return (found[0] != null && new ProcessTree(found[0].membership()).members().size() >= members)
                    || !tether.process.isAlive();
        }, UP, Duration.ofMillis(20));
        assertThat(found[0]).as("a running job lease\nstdout:\n%s\nstderr:\n%s", tether.out(), tether.err()).isNotNull();
        return found[0];
    }

    private Lease serverLease() {
        return leases(home()).stream().filter(l -> !Job.KIND.equals(l.profile())).findFirst().orElseThrow();
    }

    private void awaitFile(Path file, BackgroundTether tether) {
        assertThat(Poll.until(() -> Files.exists(file) || !tether.process.isAlive(), UP, Duration.ofMillis(20)))
                .as("%s appears\nstdout:\n%s\nstderr:\n%s", file, tether.out(), tether.err()).isTrue();
        assertThat(Files.exists(file)).as("%s appears\nstdout:\n%s\nstderr:\n%s", file, tether.out(), tether.err()).isTrue();
    }

    private void assertJobGone(Lease job) {
        assertThat(new ProcessTree(job.membership()).members()).as("members of job %s", job.id()).isEmpty();
        assertThat(job.shim() == null || !job.shim().isAlive()).as("job shim alive").isTrue();
        assertThat(home().resolve("leases").resolve(job.id() + ".json")).doesNotExist();
    }

    // ---- the tests ----

    @Test
    void aPythonJobTalksToTheTinyModelAndTetherStopsTheServerAfterwards() throws Exception {
        assumeTrue(hasPython(), "python3 is not installed");
        Path job = script("complete.py", """
                import json, os, sys, urllib.request
                body = json.dumps({"model": os.environ["TETHER_MODEL"], "prompt": "Hello", "max_tokens": 8}).encode()
                req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/completions", data=body,
                    headers={"Content-Type": "application/json", "Authorization": "Bearer " + os.environ["OPENAI_API_KEY"]})
                with urllib.request.urlopen(req, timeout=60) as r:
                    reply = json.load(r)
                print("TEXT:" + json.dumps(reply["choices"][0]["text"]))
                print("ARGS:" + " ".join(sys.argv[1:]))
                """);
        BackgroundTether tether = exec("--model", "tiny", "--port", "auto", "--", "python3", job.toString(), "{model}", "{port}");
        int code = tether.awaitExit(Duration.ofSeconds(110));
        assertThat(code).as("stdout:\n%s\nstderr:\n%s", tether.out(), tether.err()).isZero();
        assertThat(tether.out()).containsPattern("(?m)^TEXT:\".*\"$");
        String port = tether.err().lines().filter(l -> l.startsWith("Ready: ")).findFirst().orElseThrow()
                .replaceAll("^Ready: http://127\\.0\\.0\\.1:(\\d+).*$", "$1");
        assertThat(tether.out()).contains("ARGS:tiny " + port);
        // tether's own lines are on stderr: the job's stdout is the job's alone.
        assertThat(tether.out()).doesNotContain("Ready:").doesNotContain("Starting server");
        assertThat(leases(home())).isEmpty();
    }

    @Test
    void theJobsExitCodeIsTethersAndTheEnvironmentAndPlaceholdersAreSet() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether tether = exec("--command", healthServer(), "--port", String.valueOf(port), "--",
                "sh", "-c", "echo \"ENV $TETHER_URL $TETHER_PORT $OPENAI_BASE_URL $OPENAI_API_BASE $OPENAI_API_KEY"
                        + " ${TETHER_MODEL-unset} $TETHER_LEASE\"; echo \"ARGS $0 $1\"; exit 7", "{port}", "{url}");
        assertThat(tether.awaitExit(UP)).as("stdout:\n%s\nstderr:\n%s", tether.out(), tether.err()).isEqualTo(7);
        String url = "http://127.0.0.1:" + port;
        assertThat(tether.out()).containsPattern("(?m)^ENV " + url + " " + port + " " + url + "/v1 " + url + "/v1 tether unset j\\S+$");
        assertThat(tether.out()).contains("ARGS " + port + " " + url);
        assertThat(tether.err()).doesNotContain("tether: ");   // the job ran: no line of tether's own failure
        assertThat(leases(home())).isEmpty();

        // A job ended by a signal: 128 + N, as a shell reports it.
        BackgroundTether killed = exec("--command", healthServer(), "--port", "auto", "--", "sh", "-c", "kill -TERM $$");
        assertThat(killed.awaitExit(UP)).isEqualTo(143);
    }

    @Test
    void badUsageIsOneLineAndExit2() throws Exception {
        // --url works since issue 11 (UrlEndpointTest); a server option with it is a usage error.
        TetherCli.Result url = TetherCli.run(home(), "exec", "--model", "tiny", "--url", "http://127.0.0.1:1", "--port", "8001",
                "--", "true");
        assertThat(url.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(url.errLines()).hasSize(1).first().asString().startsWith("tether: ").contains("--port").contains("--url");
        TetherCli.Result none = TetherCli.run(home(), "exec", "--model", "tiny");
        assertThat(none.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(none.errLines()).hasSize(1).first().asString().contains("--");
        TetherCli.Result missing = TetherCli.run(home(), "exec", "--model", "tiny", "--", "no-such-job-xyz");
        assertThat(missing.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(missing.errLines()).hasSize(1).first().asString().contains("no-such-job-xyz");
        TetherCli.Result replicas = TetherCli.run(home(), "exec", "--model", "tiny", "--replicas", "0", "--", "true");
        assertThat(replicas.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(replicas.errLines()).hasSize(1).first().asString().contains("--replicas must be from 1 to 64");
        TetherCli.Result twice = TetherCli.run(home(), "exec", "--model", "tiny", "--model", "tiny", "--", "true");
        assertThat(twice.exitCode()).isEqualTo(ExitCode.USAGE);
        assertThat(twice.errLines()).hasSize(1).first().asString().contains("twice");
        assertThat(leases(home())).isEmpty();
    }

    @Test
    void aForeignPortIsExit4WithATetherLineAndTheJobNeverRuns() throws Exception {
        Path marker = dir.resolve("ran");
        try (java.net.ServerSocket foreign = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
            TetherCli.Result r = TetherCli.run(home(), "exec", "--command", healthServer(), "--port",
                    String.valueOf(foreign.getLocalPort()), "--", "touch", marker.toString());
            assertThat(r.exitCode()).as(r.err()).isEqualTo(ExitCode.PORT_HELD);
            assertThat(r.errLines()).last().asString().startsWith("tether: ");
        }
        assertThat(marker).doesNotExist();
        assertThat(leases(home())).isEmpty();
    }

    @Test
    void theServerFailingIsExit3WithATetherLineAndTheJobNeverRuns() throws Exception {
        Path marker = dir.resolve("ran");
        TetherCli.Result r = TetherCli.run(home(), "exec", "--command", "sh -c 'exit 9' {port}", "--port", "auto", "--",
                "touch", marker.toString());
        assertThat(r.exitCode()).isEqualTo(ExitCode.SERVER_FAILED);
        assertThat(r.err()).contains("tether: the server failed to start");
        assertThat(marker).doesNotExist();
    }

    @Test
    void aJobThatForksABackgroundWorkerAndExitsLeavesNothing() throws Exception {
        Path pidFile = dir.resolve("worker.pid");
        BackgroundTether tether = exec("--command", healthServer(), "--port", "auto", "--",
                "sh", "-c", "sleep 600 & echo $! > " + pidFile + "; exit 0");
        assertThat(tether.awaitExit(UP)).as("stderr:\n%s", tether.err()).isZero();
        int worker = Integer.parseInt(Files.readString(pidFile).trim());
        assertThat(dev.tether.proc.ProcFs.stat(worker).filter(s -> !s.isDead())).as("worker %d", worker).isEmpty();
        assertThat(processesOf(home())).isEmpty();
        assertThat(leases(home())).isEmpty();
    }

    @Test
    void killMinus9OfTetherTakesDownTheJobTreeAndTheServerTree() throws Exception {
        BackgroundTether tether = exec("--command", healthServer(), "--port", "auto", "--",
                "sh", "-c", "sleep 600 & setsid sleep 601 & sleep 602");
        Lease job = awaitJob(tether, 3);
        Lease server = serverLease();
        assertThat(new ProcessTree(server.membership()).members()).isNotEmpty();

        tether.process.destroyForcibly();   // SIGKILL: no hook runs
        assertThat(tether.process.waitFor(10, TimeUnit.SECONDS)).isTrue();

        // The shims remove their leases and then exit: wait for the exits too, not only for the leases.
        assertThat(Poll.until(() -> new ProcessTree(job.membership()).members().isEmpty()
                && new ProcessTree(server.membership()).members().isEmpty() && leases(home()).isEmpty()
                && !server.shim().isAlive() && !job.shim().isAlive(), WATCHDOG))
                .as("job and server trees gone after kill -9 of tether").isTrue();
        assertJobGone(job);
        assertServerGone(home(), server);
    }

    @Test
    void ctrlCReachesTheJobFirstThenTetherStopsEverythingAndExits130() throws Exception {
        assumeTrue(hasPython(), "python3 is not installed");
        Path seen = dir.resolve("seen");
        Path job = script("interruptible.py", """
                import os, sys, time, urllib.request
                open(sys.argv[1] + ".ready", "w").close()
                try:
                    while True:
                        time.sleep(0.05)
                except KeyboardInterrupt:
                    status = urllib.request.urlopen(os.environ["TETHER_URL"] + "/health", timeout=10).status
                    with open(sys.argv[1], "w") as f:
                        f.write("KeyboardInterrupt health=%d" % status)
                    sys.exit(3)
                """);
        BackgroundTether tether = exec("--command", healthServer(), "--port", "auto", "--", "python3", job.toString(), seen.toString());
        awaitFile(Path.of(seen + ".ready"), tether);
        Lease jobLease = awaitJob(tether, 1);
        Lease server = serverLease();

        assertThat(Signaller.send(tether.identity(), Signal.INT)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(tether.awaitExit(UP)).as("stderr:\n%s", tether.err()).isEqualTo(ExitCode.INTERRUPTED);
        // The job saw SIGINT while its server still answered: the server is stopped after the job.
        assertThat(Files.readString(seen)).isEqualTo("KeyboardInterrupt health=200");
        assertJobGone(jobLease);
        assertServerGone(home(), server);
    }

    @Test
    void aJobThatIgnoresCtrlCIsStoppedAfterTheJobGrace() throws Exception {
        BackgroundTether tether = exec("--command", healthServer(), "--port", "auto", "--job-grace", "1s", "--",
                "sh", "-c", "trap '' INT; sleep 600");
        Lease jobLease = awaitJob(tether, 1);
        Lease server = serverLease();
        assertThat(Signaller.send(tether.identity(), Signal.INT)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(tether.awaitExit(UP)).as("stderr:\n%s", tether.err()).isEqualTo(ExitCode.INTERRUPTED);
        assertJobGone(jobLease);
        assertServerGone(home(), server);
    }

    @Test
    void aServerReusedFromAnotherTetherIsLeftRunning() throws Exception {
        int port = Fixture.freePort();
        BackgroundTether serve = tethers.start(null, "serve", "--command", healthServer(), "--port", String.valueOf(port));
        Lease served = serve.awaitReady();
        TetherCli.Result r = TetherCli.run(home(), "exec", "--command", healthServer(), "--port", String.valueOf(port),
                "--", "sh", "-c", "exit 0");
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(r.err()).contains("Using running server");
        assertThat(served.server().isAlive()).isTrue();
        assertThat(status("http://127.0.0.1:" + port + "/health")).isEqualTo(200);
    }

    @Test
    void severalModelsGetOneServerEachAndTheirOwnUrls() throws Exception {
        // sh -c 'exec "$@"' {model} java ... HealthServer --port {port}: a server per model, the model in its argv.
        String command = "sh -c 'exec \"$@\"' {model} " + healthServer();
        int port = Fixture.freePort();
        BackgroundTether tether = exec("--command", command, "--model", "gen-1", "--model", "judge.v2", "--port", "auto", "--",
                "sh", "-c", "echo \"URLS $TETHER_URL $TETHER_URL_GEN_1 $TETHER_URL_JUDGE_V2 $TETHER_MODEL\"");
        assertThat(tether.awaitExit(UP)).as("stderr:\n%s", tether.err()).isZero();
        String line = tether.out().lines().filter(l -> l.startsWith("URLS ")).findFirst().orElseThrow();
        String[] words = line.split(" ");
        assertThat(words).hasSize(5);
        assertThat(words[1]).isEqualTo(words[2]).startsWith("http://127.0.0.1:");
        assertThat(words[3]).startsWith("http://127.0.0.1:").isNotEqualTo(words[2]);
        assertThat(words[4]).isEqualTo("gen-1");
        assertThat(tether.err().lines().filter(l -> l.startsWith("Ready: "))).hasSize(2);
        assertThat(leases(home())).isEmpty();
        assertThat(port).isPositive();
    }

    @Test
    void aServerKilledMidJobIsRestartedOnTheSamePortAndTheJobCarriesOn() throws Exception {
        assumeTrue(hasPython(), "python3 is not installed");
        Path go = dir.resolve("go");
        Path job = script("retries.py", """
                import os, sys, time, urllib.request
                open(sys.argv[1] + ".ready", "w").close()
                while not os.path.exists(sys.argv[1]):
                    time.sleep(0.05)
                deadline = time.time() + 60
                while True:
                    try:
                        status = urllib.request.urlopen(os.environ["TETHER_URL"] + "/health", timeout=5).status
                        if status == 200:
                            print("HEALTHY")
                            sys.exit(0)
                    except Exception as e:
                        if time.time() > deadline:
                            print("GAVE UP", e)
                            sys.exit(1)
                    time.sleep(0.1)
                """);
        int port = Fixture.freePort();
        BackgroundTether tether = exec("--command", healthServer(), "--port", String.valueOf(port), "--",
                "python3", job.toString(), go.toString());
        awaitFile(Path.of(go + ".ready"), tether);
        Lease first = serverLease();
        assertThat(Signaller.send(first.server(), Signal.KILL)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(Poll.until(() -> tether.err().contains("restarted on the same port") || !tether.process.isAlive(), UP))
                .as("stderr:\n%s", tether.err()).isTrue();
        assertThat(tether.err()).contains("restarted on the same port");
        Optional<Lease> second = leases(home()).stream().filter(l -> !Job.KIND.equals(l.profile())).findFirst();
        assertThat(second).isPresent();
        assertThat(second.get().id()).isNotEqualTo(first.id());
        assertThat(second.get().port()).isEqualTo(port);
        Files.writeString(go, "go");
        assertThat(tether.awaitExit(UP)).as("stdout:\n%s\nstderr:\n%s", tether.out(), tether.err()).isZero();
        assertThat(tether.out()).contains("HEALTHY");
        assertThat(tether.err().lines().filter(l -> l.contains("restarted on the same port"))).hasSize(1);
        assertThat(leases(home())).isEmpty();
    }
    private static boolean onPath(String program) {
        try {
            Spawner.resolveExecutable(program, null);
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    private static String shellQuote(String word) {
        return "'" + word.replace("'", "'\\''") + "'";
    }

    /** tmux's pane, as text. */
    private static String pane(Path socket) {
        try {
            Process p = new ProcessBuilder("tmux", "-S", socket.toString(), "capture-pane", "-p", "-t", "exec")
                    .redirectErrorStream(true).start();
            String text = new String(p.getInputStream().readAllBytes());
            p.waitFor(10, TimeUnit.SECONDS);
            return text;
        } catch (IOException | InterruptedException e) {
            return "";
        }
    }

    private static String readOrEmpty(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return "";
        }
    }

    private static void tmux(Path socket, String... args) throws Exception {
        List<String> all = new ArrayList<>(List.of("tmux", "-S", socket.toString()));
        all.addAll(List.of(args));
        Process p = new ProcessBuilder(all).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as("tmux %s: %s", args, out).isZero();
    }

    @Test
    void ctrlCInARealTerminalReachesAnInteractiveJobFirst() throws Exception {
        assumeTrue(onPath("tmux") && onPath("bash") && hasPython(), "tmux, bash or python3 is not installed");
        Path seen = dir.resolve("seen");
        Path rc = dir.resolve("rc");
        Path socket = dir.resolve("tmux.sock");
        Path job = script("interactive.py", """
                import os, sys, time, urllib.request
                name = input("name? ")
                print("hello " + name, flush=True)
                try:
                    time.sleep(600)
                except KeyboardInterrupt:
                    status = urllib.request.urlopen(os.environ["TETHER_URL"] + "/health", timeout=10).status
                    with open(sys.argv[1], "w") as f:
                        f.write("KeyboardInterrupt health=%d" % status)
                    raise
                """);
        List<String> words = new ArrayList<>();
        for (String w : TetherCli.command("exec", "--command", healthServer(), "--port", "auto", "--",
                "python3", job.toString(), seen.toString())) {
            words.add(shellQuote(w));
        }
        // bash, as a user's shell: a Ctrl-C reaches the whole foreground group, and bash (unlike dash) waits for
        // tether, which exits 130 by itself, and goes on to write its status.
        String line = "TETHER_HOME=" + shellQuote(home().toString()) + " " + String.join(" ", words)
                + "; echo $? > " + shellQuote(rc.toString());
        try {
            tmux(socket, "new-session", "-d", "-s", "exec", "-x", "200", "-y", "50", "bash", "-c", line);
            assertThat(Poll.until(() -> pane(socket).contains("name?"), UP, Duration.ofMillis(50)))
                    .as("the job's prompt in the terminal").isTrue();
            tmux(socket, "send-keys", "-t", "exec", "bob", "Enter");
            assertThat(Poll.until(() -> pane(socket).contains("hello bob"), UP, Duration.ofMillis(50)))
                    .as("the job read the terminal:\n%s", pane(socket)).isTrue();
            Lease jobLease = leases(home()).stream().filter(l -> Job.KIND.equals(l.profile())).findFirst().orElseThrow();
            Lease server = serverLease();
            tmux(socket, "send-keys", "-t", "exec", "C-c");
            assertThat(Poll.until(() -> !readOrEmpty(rc).isBlank(), UP, Duration.ofMillis(50)))
                    .as("tether exits:\n%s", pane(socket)).isTrue();
            assertThat(Files.readString(rc).trim()).isEqualTo(String.valueOf(ExitCode.INTERRUPTED));
            assertThat(Files.readString(seen)).isEqualTo("KeyboardInterrupt health=200");
            assertJobGone(jobLease);
            assertServerGone(home(), server);
        } finally {
            new ProcessBuilder("tmux", "-S", socket.toString(), "kill-server").start().waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    @Timeout(300)
    void aNodeJobWithTheOpenaiClientTalksToTheTinyModel() throws Exception {
        assumeTrue(onPath("node") && onPath("npm"), "node or npm is not installed");
        Path npmDir = Files.createDirectories(dir.resolve("node"));
        Process install = new ProcessBuilder("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "openai@4")
                .directory(npmDir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("npm.log").toFile()).start();
        boolean done = install.waitFor(150, TimeUnit.SECONDS);
        if (!done) {
            install.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
        assumeTrue(done && install.exitValue() == 0 && Files.isDirectory(npmDir.resolve("node_modules/openai")),
                "npm install openai failed (offline?): " + Files.readString(dir.resolve("npm.log")));
        Path job = Files.writeString(npmDir.resolve("job.js"), """
                const mod = require('openai');
                const OpenAI = mod.OpenAI || mod.default || mod;
                const client = new OpenAI({ maxRetries: 5 });   // OPENAI_BASE_URL and OPENAI_API_KEY from tether
                (async () => {
                  const r = await client.completions.create({ model: process.env.TETHER_MODEL, prompt: 'Hello', max_tokens: 8 });
                  console.log('NODE:' + JSON.stringify(r.choices[0].text));
                  const c = await client.chat.completions.create({ model: process.env.TETHER_MODEL,
                    messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8 });
                  console.log('CHAT:' + JSON.stringify(c.choices[0].message.content));
                })().catch(e => { console.error('FAILED', e); process.exit(1); });
                """);
        BackgroundTether tether = tethers.start(npmDir, "exec", "--model", "tiny", "--port", "auto", "--", "node", job.toString());
        assertThat(tether.awaitExit(Duration.ofSeconds(120))).as("stdout:\n%s\nstderr:\n%s", tether.out(), tether.err()).isZero();
        assertThat(tether.out()).containsPattern("(?m)^NODE:\".*\"$").containsPattern("(?m)^CHAT:.+$");
        assertThat(leases(home())).isEmpty();
    }
    @Test
    void aDamagedJobLeaseWhoseShimRunsIsNotReaped() throws Exception {
        BackgroundTether tether = exec("--command", healthServer(), "--port", "auto", "--", "sh", "-c", "sleep 600");
        Lease job = awaitJob(tether, 1);
        Path file = home().resolve("leases").resolve(job.id() + ".json");
        String text = Files.readString(file);
        Files.writeString(file, text.substring(0, 30));   // cut before the owner and shim fields
        TetherCli.Result reap = TetherCli.run(home(), "reap");
        assertThat(reap.exitCode()).as(reap.out() + reap.err()).isZero();
        assertThat(job.server().isAlive()).as("the job of a live tether, after reap:\n%s%s", reap.out(), reap.err()).isTrue();

        assertThat(Signaller.send(tether.identity(), Signal.TERM)).isEqualTo(Signaller.Outcome.SENT);
        assertThat(tether.awaitExit(UP)).as("stderr:\n%s", tether.err()).isEqualTo(ExitCode.TERMINATED);
        assertThat(new ProcessTree(job.membership()).members()).isEmpty();
        assertThat(leases(home())).isEmpty();
        assertThat(noFilesIn(home().resolve("leases"))).isTrue();
    }
    @Test
    void sigtermAndSighupStopTheJobTreeThenTheServers() throws Exception {
        for (String signal : new String[] {"TERM", "HUP"}) {
            BackgroundTether tether = exec("--command", healthServer(), "--port", "auto", "--", "sh", "-c", "sleep 600 & sleep 601");
            Lease jobLease = awaitJob(tether, 2);
            Lease server = serverLease();
            Process kill = new ProcessBuilder("/bin/kill", "-" + signal, String.valueOf(tether.process.pid())).inheritIO().start();
            assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
            assertThat(tether.awaitExit(UP)).as("stderr:\n%s", tether.err()).isEqualTo(signal.equals("TERM") ? 143 : 129);
            assertThat(tether.err()).contains("SIG" + signal + " received");
            assertJobGone(jobLease);
            assertServerGone(home(), server);
        }
    }
    @Test
    void aJobShimWhoseTetherDiedBeforeItStartedNeverStartsTheJob() throws Exception {
        // A tether that is gone: its identity read while it lived.
        Process gone = new ProcessBuilder("cat").start();
        dev.tether.proc.ProcessIdentity owner = dev.tether.proc.ProcessIdentity.of((int) gone.pid()).orElseThrow();
        gone.getOutputStream().close();
        assertThat(gone.waitFor(10, TimeUnit.SECONDS)).isTrue();
        Path marker = dir.resolve("ran");
        dev.tether.server.LeaseStore store = new dev.tether.server.LeaseStore(new dev.tether.server.TetherHome(home()).ensure());
        store.write(new Lease("jtest1", null, Job.KIND, List.of("touch", marker.toString()), null, 0, null, null, 0, owner, null,
                java.util.Set.of(), null, java.time.Instant.now(), 1000, Lease.State.STARTING));
        String java = ProcessHandle.current().info().command().orElse("java");
        Process shim = new ProcessBuilder(java, "-cp", System.getProperty("tether.test.classpath"),
                dev.tether.server.JobShim.class.getName(), home().toString(), "jtest1")
                .redirectErrorStream(true).redirectOutput(dir.resolve("shim.out").toFile()).start();
        assertThat(shim.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(shim.exitValue()).as(Files.readString(dir.resolve("shim.out"))).isEqualTo(127);
        assertThat(marker).doesNotExist();
        assertThat(leases(home())).isEmpty();
    }
}
