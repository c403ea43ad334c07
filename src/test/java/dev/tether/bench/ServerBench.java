package dev.tether.bench;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.TimedHealthServer;
import dev.tether.proc.Membership;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.TreeStopper;
import dev.tether.server.Profile;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerInternals;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Issue 3's measures, in one run ({@code bench/run server [iterations] [sections]}, sections a comma list of
 * shim, readiness, cycle, seed; all by default):
 * <ol>
 *   <li>the shim's own cost: its start (spawn → "started" report) and its memory (VmRSS, RssAnon,
 *       RssFile of /proc/&lt;shim&gt;/status once the server is ready), with tether's classes in a
 *       directory (how the tests run), from jars without and with the shim's AOT cache;</li>
 *   <li>readiness detection latency: from the server's first 200 on /health to {@code start()}
 *       returning (issue 3's definition), and from the instant /health started to answer 200 (the
 *       fixture's load time ended) to {@code start()} returning, which includes the polling interval;</li>
 *   <li>the full start+stop cycle of a fixture server through {@link ServerManager}, one process and the
 *       seed's shape (a parent whose forked worker serves HTTP, plus an idle worker);</li>
 *   <li>the same cycle driven the way the seed's note describes the old Python pipeline, and what it
 *       leaves running.</li>
 * </ol>
 * Wall-clock instants from the fixture ({@link TimedHealthServer}) and from here are compared on the
 * same machine clock ({@link Instant#now()}, microsecond precision).
 */
public final class ServerBench {
    private static final Duration GRACE = Duration.ofSeconds(10);
    private static final Duration UP = Duration.ofSeconds(60);
    private static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    private ServerBench() {}

    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        Set<String> sections = Set.of((args.length > 1 ? args[1] : "shim,readiness,cycle,seed").split(","));
        Path dir = Files.createTempDirectory("tether-server-bench");
        String devClasspath = System.getProperty("tether.classpath");
        if (devClasspath == null) {
            throw new IllegalStateException("run through bench/run (it sets -Dtether.classpath)");
        }
        System.out.printf("server bench, %d iterations per case; %d CPUs; load average at start: %s; JDK %s%n", n,
                Runtime.getRuntime().availableProcessors(), loadAverage(), Runtime.version());
        TetherHome home = new TetherHome(dir.resolve("home"));
        String jarClasspath = jarClasspath(dir, devClasspath);

        // 1. The shim's own cost, by layout (the cache is trained here, so it comes first).
        System.out.println();
        System.out.println("== shim: spawn -> \"started\" report, and its memory while the server runs (ready at once)");
        List<Map.Entry<String, List<Cycle>>> layouts = new ArrayList<>();
        if (sections.contains("shim")) {
            layouts.add(Map.entry("classes directory", managedCycles("classes directory (as the tests run; no AOT cache possible)",
                    home, devClasspath, false, n, 0, 0)));
            layouts.add(Map.entry("jars, no AOT cache", managedCycles("jars, AOT cache off", home, jarClasspath, false, n, 0, 0)));
        }
        System.setProperty("tether.classpath", jarClasspath);
        boolean cache;
        try (ServerManager trainer = new ServerManager(home, ServerEvents.NONE)) {
            long t0 = System.nanoTime();
            String said = ServerInternals.trainShimCache(trainer);
            System.out.printf("   training the AOT cache (once per tether build and JDK): %.0f ms, %s%n",
                    (System.nanoTime() - t0) / 1e6, said);
            cache = said.startsWith("created");
        }
        String layout = cache ? "jars + AOT cache" : "jars, NO AOT cache (training failed)";
        List<Cycle> ready = managedCycles(layout, home, jarClasspath, cache, n, 0, 0);
        layouts.add(Map.entry(layout, ready));
        for (var entry : layouts) {
            List<Cycle> c = entry.getValue();
            System.out.printf("   %-22s shim start ms %s | VmRSS MiB %s | RssAnon MiB %s | RssFile MiB %s%n", entry.getKey(),
                    stats(c.stream().map(Cycle::shimStartMs).toList()),
                    statsMiB(c.stream().map(Cycle::rssKb).toList()), statsMiB(c.stream().map(Cycle::anonKb).toList()),
                    statsMiB(c.stream().map(Cycle::fileKb).toList()));
        }

        // 2 and 3: readiness and the cycle through ServerManager, as installed (jars + AOT cache).
        if (sections.contains("readiness")) {
            System.out.println();
            System.out.println("== readiness detection latency (" + layout + ")");
            List<Cycle> slowLoad = managedCycles("server answering 503 for 1000 ms after it listens", home, jarClasspath,
                    cache, n, 1000, 0);
            reportReadiness("ready at once (first 200 = first answer)", ready);
            reportReadiness("503 for 1 s, then 200", slowLoad);
        }
        if (sections.contains("cycle")) {
            System.out.println();
            System.out.println("== full start+stop cycle through ServerManager (" + layout + ")");
            List<Cycle> workers = managedCycles("parent + HTTP worker + idle worker (the seed's shape)", home, jarClasspath,
                    cache, n, 0, 2);
            reportCycles("tether, 1 process", ready);
            reportCycles("tether, parent + 2 workers", workers);
        }

        // 4. The old way.
        if (sections.contains("seed")) {
            System.out.println();
            System.out.println("== the same cycle the seed's way: Popen, health every 2 s, terminate() the parent, fixed sleeps, port cleanup");
            List<Cycle> oldSingle = new ArrayList<>();
            List<Cycle> oldWorkers = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                oldSingle.add(oldWay(dir, 0));
                oldWorkers.add(oldWay(dir, 2));
            }
            reportCycles("seed, 1 process", oldSingle);
            reportCycles("seed, parent + 2 workers", oldWorkers);
            reportReadiness("seed, ready at once", oldSingle);
            System.out.printf("   the fixture's own exit after SIGTERM (1 process, JVM reaper): ms %s%n",
                    stats(oldSingle.stream().map(Cycle::rootExitMs).toList()));
        }

        System.out.printf("%nload average at the end: %s%n", loadAverage());
        deleteTree(dir);
    }

    /** One start+stop of a fixture server: what was measured. */
    record Cycle(double startMs, double stopMs, double firstAnswerMs, double healthyMs, double shimStartMs,
                 long rssKb, long anonKb, long fileKb, int leftOver, boolean portFree, double rootExitMs) {
        double cycleMs() {
            return startMs + stopMs;
        }
    }

    private static List<Cycle> managedCycles(String what, TetherHome home, String classpath, boolean cache, int n,
                                             long readyAfterMs, int workers) throws Exception {
        System.setProperty("tether.classpath", classpath);
        if (cache) {
            System.clearProperty("tether.shim.aot");
        } else {
            System.setProperty("tether.shim.aot", "false");
        }
        List<Cycle> cycles = new ArrayList<>();
        try (ServerManager manager = new ServerManager(home, ServerEvents.NONE)) {
            Path cacheFile = ServerInternals.shimCacheFile(manager);
            if (cache && (cacheFile == null || !Files.isRegularFile(cacheFile))) {
                throw new IllegalStateException("no shim AOT cache: " + ServerInternals.shimCacheDisabledWhy(manager));
            }
            for (int i = 0; i < n; i++) {
                cycles.add(managed(manager, home.root().getParent(), readyAfterMs, workers));
            }
        } finally {
            System.clearProperty("tether.shim.aot");
        }
        System.out.printf("   ran %d x %s, %s%n", n, what, cache ? "AOT cache on" : "no AOT cache");
        return cycles;
    }

    private static List<String> fixtureArgs(Path stamps, long readyAfterMs, int workers, String port) {
        List<String> a = new ArrayList<>(List.of("--port", port, "--stamps", stamps.toString(),
                "--ready-after-ms", String.valueOf(readyAfterMs)));
        if (workers > 0) {
            a.addAll(List.of("--workers", String.valueOf(workers)));
        }
        return a;
    }

    private static Cycle managed(ServerManager manager, Path dir, long readyAfterMs, int workers) throws Exception {
        Path stamps = dir.resolve("stamps-" + UUID.randomUUID() + ".txt");
        String template = String.join(" ", Fixture.command(TimedHealthServer.class,
                fixtureArgs(stamps, readyAfterMs, workers, "{port}").toArray(String[]::new)));
        Profile profile = Profiles.command(template, "/health").withStartupTimeout(UP);
        ServerSpec spec = new ServerSpec("bench", profile, "127.0.0.1", ServerSpec.AUTO_PORT, GRACE);

        long t0 = System.nanoTime();
        ServerHandle server = manager.start(spec);
        Instant returned = Instant.now();
        long t1 = System.nanoTime();
        double shimStart = ServerInternals.shimStartup(server).map(d -> d.toNanos() / 1e6).orElse(Double.NaN);
        long[] rss = rss(server.lease().shim().pid());
        long[] stamp = stamps(stamps);
        int port = server.port();
        Membership membership = server.lease().membership();
        long t2 = System.nanoTime();
        server.stop();
        long t3 = System.nanoTime();
        int left = new ProcessTree(manager.lease(server.lease().id()).map(l -> l.membership()).orElse(membership))
                .members().size();
        return new Cycle((t1 - t0) / 1e6, (t3 - t2) / 1e6, millisBetween(stamp[1], returned),
                millisBetween(stamp[0], returned), shimStart, rss[0], rss[1], rss[2], left,
                !PortListeners.isListening(port), Double.NaN);
    }

    /**
     * The seed's ServerManager as its note describes it, reproduced on purpose: Popen of the server
     * (no session of its own, no shim), a health check every 2 s, then {@code terminate()} of the parent
     * only, fixed sleeps, and a port cleanup that SIGKILLs what still listens. The sleeps here ARE the
     * behaviour being measured (the only Thread.sleep in tether, which otherwise waits on conditions).
     * The note gives no lengths; 2 s after terminate() and 1 s after the port cleanup are assumed. Its
     * {@code lsof -ti :port} would also match client sockets (this JVM's own, too), so only listeners are
     * killed here. Every process carries a marker so that what it leaves can be counted, then stopped.
     */
    private static Cycle oldWay(Path dir, int workers) throws Exception {
        int port = Fixture.freePort();
        Path stamps = dir.resolve("stamps-" + UUID.randomUUID() + ".txt");
        String marker = "bench-seed-" + UUID.randomUUID();
        killListeners(port);   // "checks for orphaned processes before starting"
        ProcessBuilder popen = new ProcessBuilder(Fixture.command(TimedHealthServer.class,
                fixtureArgs(stamps, 0, workers, String.valueOf(port)).toArray(String[]::new)))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("seed.log").toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        popen.environment().put(Membership.LEASE_ENV, marker);   // for counting leftovers only
        long t0 = System.nanoTime();
        Process server = popen.start();
        String health = "http://127.0.0.1:" + port + "/health";
        long deadline = t0 + UP.toNanos();
        while (!healthy(health)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("the seed-style start timed out");
            }
            Thread.sleep(2000);   // the seed's health polling interval
        }
        Instant returned = Instant.now();
        long t1 = System.nanoTime();
        long[] stamp = stamps(stamps);

        java.util.concurrent.atomic.AtomicLong exitedAt = new java.util.concurrent.atomic.AtomicLong();
        server.onExit().thenRun(() -> exitedAt.set(System.nanoTime()));   // the JVM's reaper: event-driven
        long t2 = System.nanoTime();
        server.destroy();        // Popen.terminate(): SIGTERM to the parent only
        Thread.sleep(2000);      // fixed sleep: "give it time to shut down"
        killListeners(port);     // kill_process_on_port: SIGKILL whatever still listens
        Thread.sleep(1000);      // fixed sleep: "let the port go"
        long t3 = System.nanoTime();

        ProcessTree tree = new ProcessTree(new Membership(marker, null, null, 0, Set.of()));
        int left = tree.members().size();
        boolean portFree = !PortListeners.isListening(port);
        if (left > 0) {
            TreeStopper.stop(tree, Duration.ofSeconds(5), port);   // not part of the seed: nothing may leak from the bench
        }
        return new Cycle((t1 - t0) / 1e6, (t3 - t2) / 1e6, millisBetween(stamp[1], returned),
                millisBetween(stamp[0], returned), Double.NaN, 0, 0, 0, left, portFree,
                exitedAt.get() == 0 ? Double.NaN : (exitedAt.get() - t2) / 1e6);
    }

    private static boolean healthy(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void killListeners(int port) {
        for (int pid : PortListeners.holderPids(port)) {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
        }
    }

    /** The fixture's stamps: {healthy, first-200} in epoch nanoseconds. */
    private static long[] stamps(Path file) throws IOException {
        if (!Poll.until(() -> Files.exists(file), Duration.ofSeconds(10))) {
            throw new IllegalStateException("the fixture wrote no stamps to " + file);
        }
        long[] out = new long[2];
        for (String line : Files.readAllLines(file)) {
            String[] kv = line.split(" ");
            out[kv[0].equals("healthy") ? 0 : 1] = Long.parseLong(kv[1]);
        }
        return out;
    }

    private static double millisBetween(long epochNanos, Instant later) {
        long laterNanos = later.getEpochSecond() * 1_000_000_000L + later.getNano();
        return (laterNanos - epochNanos) / 1e6;
    }

    /** VmRSS, RssAnon, RssFile of a process, in KiB. */
    private static long[] rss(int pid) throws IOException {
        long[] out = new long[3];
        for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
            String[] f = line.split("\\s+");
            switch (f[0]) {
                case "VmRSS:" -> out[0] = Long.parseLong(f[1]);
                case "RssAnon:" -> out[1] = Long.parseLong(f[1]);
                case "RssFile:" -> out[2] = Long.parseLong(f[1]);
                default -> { }
            }
        }
        return out;
    }

    private static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "?";
        }
    }

    private static void reportReadiness(String name, List<Cycle> cycles) {
        System.out.printf("   %-40s first 200 -> start() returned ms %s | healthy -> start() returned ms %s%n", name,
                stats(cycles.stream().map(Cycle::firstAnswerMs).toList()),
                stats(cycles.stream().map(Cycle::healthyMs).toList()));
    }

    private static void reportCycles(String name, List<Cycle> cycles) {
        int left = cycles.stream().mapToInt(Cycle::leftOver).sum();
        long busy = cycles.stream().filter(c -> !c.portFree()).count();
        System.out.printf("   %-28s start ms %s | stop ms %s | cycle ms %s | left running: %d process(es) in %d cycles%s%n",
                name, stats(cycles.stream().map(Cycle::startMs).toList()), stats(cycles.stream().map(Cycle::stopMs).toList()),
                stats(cycles.stream().map(Cycle::cycleMs).toList()), left, cycles.size(),
                busy == 0 ? "" : ", port still listening after " + busy + " stops");
    }

    private static String stats(List<Double> values) {
        List<Double> sorted = new ArrayList<>(values);
        Collections.sort(sorted);
        return String.format("median %.1f p90 %.1f max %.1f", sorted.get(sorted.size() / 2),
                sorted.get((int) Math.ceil(sorted.size() * 0.9) - 1), sorted.getLast());
    }

    private static String statsMiB(List<Long> kib) {
        return stats(kib.stream().map(k -> k / 1024.0).toList());
    }

    private static String jarClasspath(Path dir, String devClasspath) throws IOException {
        return ServerInternals.installedClasspath(dir, devClasspath);
    }

    private static void deleteTree(Path root) throws IOException {
        try (Stream<Path> all = Files.walk(root)) {
            for (Path p : all.sorted(Collections.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
