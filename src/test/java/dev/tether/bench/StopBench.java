package dev.tether.bench;

import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.ForksWorkers;
import dev.tether.fixtures.IgnoresSigterm;
import dev.tether.fixtures.Worker;
import dev.tether.proc.Member;
import dev.tether.proc.Poll;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.TreeStopper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Time from "stop" to "tree gone and port free" (issue 2), as overhead over what the tree itself
 * needs:
 * <ul>
 *   <li>prompt: one process that exits on SIGTERM; overhead = stop() return − the root's exit as
 *       reported by the JVM's reaper (waitpid, event-driven);</li>
 *   <li>tree: a parent and two forked workers (the seed's shape); overhead = stop() return − the last
 *       member's exit, seen by an observer thread spinning on /proc;</li>
 *   <li>ignores-term: a process that ignores SIGTERM; overhead = stop() duration − the grace.</li>
 * </ul>
 * Run with {@code bench/run stop [iterations]}.
 */
public final class StopBench {
    private static final Duration STARTUP = Duration.ofSeconds(30);

    public static void main(String[] args) throws Exception {
        int iterations = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        Duration grace = Duration.ofMillis(args.length > 1 ? Long.parseLong(args[1]) : 1000);
        Path dir = Files.createTempDirectory("tether-bench");
        System.out.printf("stop latency, %d iterations each, grace for ignores-term %d ms%n", iterations, grace.toMillis());
        report("prompt (1 process, exits on SIGTERM)", prompt(dir, iterations));
        report("tree (parent + 2 forked workers)", tree(dir, iterations));
        report("ignores-term (1 process, SIGKILL after grace)", ignoresTerm(dir, iterations, grace));
    }

    private static Spawned start(Path dir, Class<?> fixture, int port, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("--port", String.valueOf(port)));
        args.addAll(List.of(extra));
        Spawned s = Spawner.spawn(Spawner.Spec.of(Fixture.command(fixture, args.toArray(String[]::new)),
                dir.resolve("bench.log"), "bench-" + UUID.randomUUID()));
        Fixture.awaitListening(port, STARTUP);
        return s;
    }

    private static List<Double> prompt(Path dir, int n) throws Exception {
        List<Double> overheads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int port = Fixture.freePort();
            Spawned s = start(dir, Worker.class, port);
            ProcessTree tree = new ProcessTree(s.membership());
            AtomicLong exitedAt = new AtomicLong();
            s.process().onExit().thenRun(() -> exitedAt.set(System.nanoTime()));
            StopReport r = TreeStopper.stop(tree, Duration.ofSeconds(10), port);
            long returned = System.nanoTime();
            Poll.until(() -> exitedAt.get() != 0, Duration.ofSeconds(5));
            check(r);
            overheads.add((returned - exitedAt.get()) / 1e6);
        }
        return overheads;
    }

    private static List<Double> tree(Path dir, int n) throws Exception {
        List<Double> overheads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int port = Fixture.freePort();
            Spawned s = start(dir, ForksWorkers.class, port, "--workers", "2");
            ProcessTree tree = new ProcessTree(s.membership());
            Poll.until(() -> tree.members().size() == 3, STARTUP);
            List<ProcessIdentity> members = tree.members().stream().map(Member::identity).toList();
            AtomicLong lastExit = new AtomicLong();
            Thread observer = Thread.ofPlatform().start(() -> {
                while (members.stream().anyMatch(ProcessIdentity::isAlive)) {
                    Thread.onSpinWait();
                }
                lastExit.set(System.nanoTime());
            });
            StopReport r = TreeStopper.stop(tree, Duration.ofSeconds(10), port);
            long returned = System.nanoTime();
            observer.join();
            check(r);
            overheads.add((returned - lastExit.get()) / 1e6);
        }
        return overheads;
    }

    private static List<Double> ignoresTerm(Path dir, int n, Duration grace) throws Exception {
        List<Double> overheads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int port = Fixture.freePort();
            Spawned s = start(dir, IgnoresSigterm.class, port);
            ProcessTree tree = new ProcessTree(s.membership());
            long t0 = System.nanoTime();
            StopReport r = TreeStopper.stop(tree, grace, port);
            long returned = System.nanoTime();
            check(r);
            overheads.add((returned - t0) / 1e6 - grace.toMillis());
        }
        return overheads;
    }

    private static void check(StopReport r) {
        if (!r.complete()) {
            throw new IllegalStateException("stop incomplete: " + r.summary());
        }
    }

    private static void report(String name, List<Double> ms) {
        List<Double> sorted = new ArrayList<>(ms);
        Collections.sort(sorted);
        System.out.printf("%-48s overhead ms: median %.1f  p90 %.1f  max %.1f  (n=%d)%n", name,
                sorted.get(sorted.size() / 2), sorted.get((int) Math.ceil(sorted.size() * 0.9) - 1),
                sorted.getLast(), sorted.size());
    }
}
