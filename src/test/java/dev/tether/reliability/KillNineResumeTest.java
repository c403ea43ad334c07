package dev.tether.reliability;

import static dev.tether.cli.TetherHomes.leases;
import static dev.tether.cli.TetherHomes.processesOf;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.cli.BackgroundTether;
import dev.tether.cli.Tethers;
import dev.tether.proc.Poll;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * "kill -9 at any moment" (RELIABILITY.md): {@code tether run} on the embedded engine and the tiny model is
 * SIGKILLed at random moments, each kill followed by a resumed run (the same command) that is killed in its
 * turn. After every kill: no process of that TETHER_HOME outlives the watchdog for long, every line of the
 * output parses and no record appears twice. Work is split into rounds (one output each); a round ends with
 * a resumed run that completes, which must leave exactly N records, each once.
 *
 * <p>Where a kill lands is drawn at random: most kills wait a delay drawn uniformly over the span the run
 * is expected to take (measured by a clean run first, scaled to the work left), so they land while the JVM
 * starts, while the server starts, during inference, during the closing summary and server stop, or after
 * the run has exited. Some are aimed: right after a record is written (the torn-line window) and while the
 * run restarts a server that died under it.
 *
 * <p>Size: {@code tether.reliability.kills} (5 in the normal suite, 50 under ./run-reliability);
 * replay with {@code -Dtether.reliability.seed=N}; {@code -Dtether.reliability.aim=AT_START} (or another {@link Aim})
 * aims every kill at one window. Figures go to target/reliability/kill-nine.md.
 */
class KillNineResumeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration RUN = Duration.ofMinutes(2);
    /** The issue's "a few seconds": the longest an orphan may outlive its manager. */
    private static final Duration ORPHAN_LIMIT = Duration.ofSeconds(10);
    private static final int N = 24;
    private static final int KILLS_PER_ROUND = 4;
    private static final Pattern SUMMARY = Pattern.compile("^\\S+: \\d+ records \\(", Pattern.MULTILINE);

    @TempDir
    Path dir;

    @RegisterExtension
    final Tethers tethers = new Tethers(() -> dir.resolve("home"));

    private Path home() {
        return dir.resolve("home");
    }

    /** Where a kill was aimed. */
    enum Aim {
        RANDOM("random delay over the run's expected span", false),
        AT_START("at once after \"Starting server\" (lease written, shim being spawned)", false),
        AFTER_RECORD("0-2 ms after the output grew (a line being written)", true),
        SERVER_RESTART("while the run restarts a server the test killed", true),
        AT_SUMMARY("at once after the step's summary line (server being stopped)", false);

        final String label;
        /** Needs records left to do when the run starts. */
        final boolean needsWork;

        Aim(String label, boolean needsWork) {
            this.label = label;
            this.needsWork = needsWork;
        }
    }

    /** Where a kill landed, judged from what the run had printed (all of it: the kill ends the stream). */
    enum Phase {
        JVM_START("before \"Starting server\""),
        SERVER_STARTING("server starting (before \"Ready:\")"),
        INFERENCE("during inference"),
        RESTARTING("server restarting (its first server died; before the new \"Ready:\")"),
        CLOSING("closing (summary printed, server stopping)"),
        AFTER_EXIT("after the run had exited");

        final String label;

        Phase(String label) {
            this.label = label;
        }
    }

    /** One workload: a command whose output is a JSONL file of records keyed by {@code key}. */
    private record Workload(String name, List<String> args, Path output, String key, int n) {}

    private record Kill(int number, int round, Aim aim, long delayMillis, Phase phase, int recordsBefore,
            int recordsAfter, long orphanMillis, int orphanProcesses, int leasesLeft, int exitCode) {}

    private final List<Kill> kills = new ArrayList<>();
    private final List<String> problems = new ArrayList<>();
    private int unparseable;
    private int mismatched;
    private int duplicates;
    private int rounds;
    private int staleLeases;
    private final List<Round> roundResults = new ArrayList<>();

    private record Round(int number, String workload, int exit, int records, int expected, int distinct, long failures) {
        boolean complete() {
            return exit == 0 && records == expected && distinct == expected && failures == 0;
        }
    }

    @Test
    @Timeout(value = 20, unit = TimeUnit.MINUTES)
    void tetherRunKilledAtRandomMomentsResumesWithEveryRecordExactlyOnce() throws Exception {
        long seed = Reliability.seed();
        System.out.println("kill-nine seed: " + seed + " (replay with -Dtether.reliability.seed=" + seed + ")");
        Random random = new Random(seed);
        int total = Reliability.size("kills", 5, 50);
        int promptKills = Math.max(1, total / 5);
        long t0 = System.nanoTime();

        Workload wiki = wiki(0);
        Span span = measure(wiki);
        Files.delete(wiki.output());

        int killed = 0;
        int round = 0;
        Workload work = null;
        int inRound = 0;
        while (killed < total) {
            killed++;
            Aim aim = aim(killed);
            boolean prompts = killed > total - promptKills;
            boolean newRound = work == null || inRound == KILLS_PER_ROUND || prompts != work.name().equals("prompts")
                    || read(work).records.size() + (aim.needsWork ? 6 : 0) >= work.n();
            if (newRound) {
                if (work != null) {
                    finishRound(work, round);
                }
                round++;
                work = prompts ? prompts(round) : wiki(round);
                inRound = 0;
            }
            inRound++;
            kills.add(killOnce(work, span, random, killed, round, aim));
        }
        finishRound(work, round);
        rounds = round;
        Duration wall = Duration.ofNanos(System.nanoTime() - t0);
        Reliability.report("kill-nine", report(seed, span, wall));
        assertThat(problems).as("problems found").isEmpty();
        assertThat(kills).hasSize(total);
    }

    /** Six kills in ten at a random delay; the others aimed at the narrow windows (one each in every ten). */
    private static Aim aim(int number) {
        String only = System.getProperty("tether.reliability.aim");
        if (only != null) {
            return Aim.valueOf(only.toUpperCase(java.util.Locale.ROOT));   // every kill aimed at one window
        }
        return switch (number % 10) {
            case 1 -> Aim.AT_START;
            case 3 -> Aim.AFTER_RECORD;
            case 5 -> Aim.SERVER_RESTART;
            case 7 -> Aim.AT_SUMMARY;
            default -> Aim.RANDOM;
        };
    }

    // --- workloads ---------------------------------------------------------------------------------

    private Workload wiki(int round) throws IOException {
        Path outDir = dir.resolve("out-" + round);
        Path questions = outDir.resolve("precise_qa/qa_goodwiki_tiny_dynamic.jsonl");
        Files.createDirectories(questions.getParent());
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < N; i++) {
            lines.append(JSON.writeValueAsString(Map.of("title", "Topic " + i, "h_score_cat", 8 + i % 2,
                    "reference", "Reference text " + i, "prompt", "What is item " + i + "?", "answer", "item " + i,
                    "candidate", i))).append('\n');
        }
        Files.writeString(questions, lines);
        return new Workload("precisewikiqa", List.of("run", "--task", "precisewikiqa", "--step", "inference", "--model", "tiny",
                "--port", "auto", "--N", String.valueOf(N), "--max-tokens", "48", "--output-dir", outDir.toString()),
                outDir.resolve("precisewikiqa/tiny/generation.jsonl"), "index", N);
    }

    private Workload prompts(int round) throws IOException {
        Path input = dir.resolve("prompts-" + round + ".jsonl");
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < N; i++) {
            // half keyed by "id", half by line number (the two resume keys of the prompts task)
            Map<String, Object> line = new LinkedHashMap<>();
            if (i % 2 == 0) {
                line.put("id", "p" + i);
            }
            line.put("prompt", "Say something about " + i);
            lines.append(JSON.writeValueAsString(line)).append('\n');
        }
        Files.writeString(input, lines);
        Path output = dir.resolve("gens-" + round + ".jsonl");
        // Two replicas (issue 11): a kill -9 must take both trees with it, and the resume must not mind which wrote what.
        return new Workload("prompts", List.of("run", "--task", "prompts", "--model", "tiny", "--port", "auto",
                "--replicas", "2", "--max-tokens", "48", "--input", input.toString(), "--output", output.toString()),
                output, null, N);
    }

    private static String keyOf(Workload work, JsonNode record) {
        if (work.key() != null) {
            return record.path(work.key()).asText(null);
        }
        return record.has("id") ? "id:" + record.get("id").asText() : record.has("line") ? "line:" + record.get("line").asInt() : null;
    }

    // --- the experiment ----------------------------------------------------------------------------

    /** How long a clean run takes: a fixed part (JVM, server start and stop) and a part per record. */
    private record Span(long fixedMillis, long totalMillis, int n) {
        long expectedMillis(int left) {
            return fixedMillis + (totalMillis - fixedMillis) * left / n;
        }
    }

    private Span measure(Workload work) throws Exception {
        long t0 = System.nanoTime();
        BackgroundTether clean = start(work);
        clean.awaitLine("Ready: ", RUN);
        long ready = (System.nanoTime() - t0) / 1_000_000;
        assertThat(clean.awaitExit(RUN)).as(clean.err()).isZero();
        long total = (System.nanoTime() - t0) / 1_000_000;
        assertThat(read(work).records).hasSize(work.n());
        assertThat(Poll.until(() -> processesOf(home()).isEmpty(), ORPHAN_LIMIT, Duration.ofMillis(10))).isTrue();
        // what does not depend on the number of records: startup until ready, plus the closing stop (~0.5 s)
        return new Span(Math.min(total, ready + 500), total, work.n());
    }

    private BackgroundTether start(Workload work) throws IOException {
        BackgroundTether t = tethers.start(dir, work.args().toArray(String[]::new));
        return t;
    }

    private Kill killOnce(Workload work, Span span, Random random, int number, int round, Aim aim) throws Exception {
        int before = read(work).records.size();
        BackgroundTether victim = start(work);
        ProcessIdentity tether = ProcessIdentity.of((int) victim.process.pid()).orElse(null);
        long delay = 0;
        switch (aim) {
            case RANDOM -> {
                // uniformly over the span this run should take (10% past it, so some land after exit)
                long expected = span.expectedMillis(work.n() - before);
                delay = (long) (random.nextDouble() * expected * 1.1);
                victim.process.waitFor(delay, TimeUnit.MILLISECONDS);
            }
            case AT_START -> Poll.until(() -> victim.out().contains("Starting server") || !victim.process.isAlive(), RUN,
                    Duration.ofMillis(1));
            case AT_SUMMARY -> Poll.until(() -> SUMMARY.matcher(victim.out()).find() || !victim.process.isAlive(), RUN,
                    Duration.ofMillis(1));
            case AFTER_RECORD -> {
                int target = Math.min(work.n(), before + 1 + random.nextInt(4));
                Poll.until(() -> lineCount(work.output()) >= target || !victim.process.isAlive(), RUN, Duration.ofMillis(1));
                delay = random.nextInt(3);   // 0-2 ms after the record landed
                if (delay > 0) {
                    victim.process.waitFor(delay, TimeUnit.MILLISECONDS);
                }
            }
            case SERVER_RESTART -> {
                int target = Math.min(work.n(), before + 1);
                Poll.until(() -> lineCount(work.output()) >= target || !victim.process.isAlive(), RUN, Duration.ofMillis(5));
                List<Lease> leases = leases(home());
                if (victim.process.isAlive() && leases.size() == 1 && leases.getFirst().server() != null) {
                    Signaller.send(leases.getFirst().server(), Signal.KILL);
                    Poll.until(() -> victim.err().contains("restarting it") || !victim.process.isAlive(), RUN,
                            Duration.ofMillis(2));
                    delay = random.nextInt(1500);   // the restart (a new server start) takes about a second
                    victim.process.waitFor(delay, TimeUnit.MILLISECONDS);
                }
            }
        }
        Signaller.Outcome outcome = tether == null ? Signaller.Outcome.GONE : Signaller.send(tether, Signal.KILL);
        long killedAt = System.nanoTime();
        boolean landed = outcome == Signaller.Outcome.SENT;
        // "the orphan outlived its manager": from the kill -9 until no process of this TETHER_HOME is alive
        int[] atKill = {-1};
        boolean gone = Poll.until(() -> {
            int alive = processesOf(home()).size();
            if (atKill[0] < 0) {
                atKill[0] = alive;
            }
            return alive == 0;
        }, Duration.ofSeconds(30), Duration.ofMillis(5));
        long orphanMillis = (System.nanoTime() - killedAt) / 1_000_000;
        List<ProcessIdentity> left = processesOf(home());
        if (!gone || orphanMillis > ORPHAN_LIMIT.toMillis()) {
            problems.add("kill " + number + ": processes of the home alive " + orphanMillis + " ms after the kill: "
                    + left.stream().map(p -> p + " " + ProcFs.commandLine(p.pid())).toList());
            left.forEach(p -> Signaller.send(p, Signal.KILL));
        }
        int exit = victim.awaitExit(Duration.ofSeconds(30));
        Phase phase = landed ? phase(victim.out()) : Phase.AFTER_EXIT;
        if (!landed && exit != 0) {
            problems.add("kill " + number + ": the run exited " + exit + " before the kill\nstdout:\n" + victim.out()
                    + "\nstderr:\n" + victim.err());
        }
        Output after = read(work);
        check(number, work, after);
        int leasesLeft = leases(home()).size();
        Kill kill = new Kill(number, round, aim, delay, phase, before, after.records.size(), orphanMillis, atKill[0],
                leasesLeft, exit);
        System.out.println(kill);
        return kill;
    }

    private static Phase phase(String out) {
        if (!out.contains("Starting server")) {
            return Phase.JVM_START;
        }
        long starts = out.lines().filter(l -> l.startsWith("Starting server")).count();
        long readies = out.lines().filter(l -> l.startsWith("Ready: ")).count();
        if (readies == 0) {
            return Phase.SERVER_STARTING;
        }
        if (starts > readies) {
            return Phase.RESTARTING;
        }
        if (!SUMMARY.matcher(out).find()) {
            return Phase.INFERENCE;
        }
        return Phase.CLOSING;
    }

    /** The resumed run that ends a round: it completes, and leaves every record exactly once. */
    private void finishRound(Workload work, int round) throws Exception {
        BackgroundTether last = start(work);
        int exit = last.awaitExit(RUN);
        Output out = read(work);
        check(-round, work, out);
        long errors = out.records.stream().filter(r -> r.has("error")).count();
        Map<String, Integer> keys = new HashMap<>();
        out.records.forEach(r -> keys.merge(keyOf(work, r), 1, Integer::sum));
        Round result = new Round(round, work.name(), exit, out.records.size(), work.n(), keys.size(), errors);
        roundResults.add(result);
        System.out.println(result);
        if (!result.complete() || keys.containsKey(null)) {
            problems.add(result + "\nstdout:\n" + last.out() + "\nstderr:\n" + last.err());
        }
        if (!Poll.until(() -> processesOf(home()).isEmpty(), ORPHAN_LIMIT, Duration.ofMillis(10))) {
            problems.add("round " + round + ": processes left after a clean run: " + processesOf(home()));
        }
        List<Lease> stale = leases(home());
        if (!stale.isEmpty()) {
            staleLeases += stale.size();
            problems.add("round " + round + ": leases left after a clean run (nobody will remove them): "
                    + stale.stream().map(l -> l.id() + " port " + l.port() + " owner " + l.owner() + " shim " + l.shim()).toList());
            stale.forEach(l -> {
                try {
                    Files.deleteIfExists(home().resolve("leases").resolve(l.id() + ".json"));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
        }
    }

    // --- the output --------------------------------------------------------------------------------

    private record Output(List<JsonNode> records, int unparseable, boolean unterminated) {}

    private static Output read(Workload work) throws IOException {
        List<JsonNode> records = new ArrayList<>();
        int bad = 0;
        boolean unterminated = false;
        if (Files.exists(work.output())) {
            String text = Files.readString(work.output(), StandardCharsets.UTF_8);
            unterminated = !text.isEmpty() && !text.endsWith("\n");
            for (String line : text.lines().toList()) {
                try {
                    JsonNode node = JSON.readTree(line);
                    if (node == null || !node.isObject()) {
                        bad++;
                    } else {
                        records.add(node);
                    }
                } catch (IOException e) {
                    bad++;
                }
            }
        }
        return new Output(records, bad, unterminated);
    }

    /** Every line parses, ends with a newline, and no key appears twice. */
    private void check(int number, Workload work, Output out) {
        String where = number > 0 ? "after kill " + number : "after round " + -number;
        if (out.unparseable > 0 || out.unterminated) {
            unparseable += out.unparseable + (out.unterminated && out.unparseable == 0 ? 1 : 0);
            problems.add(where + ": " + out.unparseable + " unparseable lines, unterminated tail: " + out.unterminated
                    + " in " + work.output());
        }
        Map<String, Integer> seen = new TreeMap<>();
        out.records.forEach(r -> seen.merge(String.valueOf(keyOf(work, r)), 1, Integer::sum));
        List<String> twice = seen.entrySet().stream().filter(e -> e.getValue() > 1).map(Map.Entry::getKey).toList();
        if (!twice.isEmpty()) {
            duplicates += twice.size();
            problems.add(where + ": keys written more than once: " + twice);
        }
        // each record answers its own item: a record under another item's key would be lost work in disguise
        List<String> wrong = out.records.stream().filter(r -> !r.path("prompt").asText().equals(expectedPrompt(work, r)))
                .map(r -> keyOf(work, r) + " has prompt '" + r.path("prompt").asText() + "'").toList();
        if (!wrong.isEmpty()) {
            mismatched += wrong.size();
            problems.add(where + ": records under the wrong key: " + wrong);
        }
        Path torn = work.output().resolveSibling(work.output().getFileName() + ".torn");
        if (Files.exists(torn)) {
            problems.add(where + ": a torn tail was cut from the output (" + torn + ")");
        }
    }

    /** The prompt that the record with this key was written for (as wiki() and prompts() write the inputs). */
    private static String expectedPrompt(Workload work, JsonNode record) {
        if (work.key() != null) {
            return "What is item " + record.path("index").asInt(-1) + "?";
        }
        int item = record.has("id") ? Integer.parseInt(record.get("id").asText().substring(1)) : record.path("line").asInt() - 1;
        return "Say something about " + item;
    }

    private static int lineCount(Path file) {
        try {
            if (!Files.exists(file)) {
                return 0;
            }
            byte[] bytes = Files.readAllBytes(file);
            int n = 0;
            for (byte b : bytes) {
                if (b == '\n') {
                    n++;
                }
            }
            return n;
        } catch (IOException e) {
            return 0;
        }
    }

    // --- the report --------------------------------------------------------------------------------

    private String report(long seed, Span span, Duration wall) {
        StringBuilder md = new StringBuilder();
        md.append("## kill -9 at any moment\n\n");
        md.append(String.format("- seed: %d (replay: `-Dtether.reliability.seed=%d`)%n", seed, seed));
        md.append(String.format("- kills: %d, in %d rounds of N = %d records (%d on precisewikiqa inference, %d on prompts); "
                + "each kill followed by a resumed run, each round ended by a resumed run to completion%n",
                kills.size(), rounds, N, kills.stream().filter(k -> !isPrompts(k)).count(),
                kills.stream().filter(this::isPrompts).count()));
        md.append(String.format("- a clean run of %d records: %.1f s (ready plus stop: %.1f s); random delays drawn "
                + "uniformly over [0, 1.1 x the expected span of the work left]%n", N, span.totalMillis() / 1000.0,
                span.fixedMillis() / 1000.0));
        md.append("\nWhere the kills landed:\n\n| phase | kills |\n|---|---|\n");
        for (Phase phase : Phase.values()) {
            md.append("| ").append(phase.label).append(" | ").append(kills.stream().filter(k -> k.phase == phase).count())
                    .append(" |\n");
        }
        md.append("\nHow they were aimed:\n\n| aim | kills |\n|---|---|\n");
        for (Aim aim : Aim.values()) {
            md.append("| ").append(aim.label).append(" | ").append(kills.stream().filter(k -> k.aim == aim).count())
                    .append(" |\n");
        }
        List<Long> orphan = kills.stream().filter(k -> k.phase != Phase.AFTER_EXIT).map(Kill::orphanMillis).sorted().toList();
        md.append("\nFigures:\n\n");
        md.append(String.format("- records at the end: %d of %d expected (%d rounds of %d; %d rounds complete: exit 0, "
                + "every key exactly once, no failure records)%n", roundResults.stream().mapToInt(Round::records).sum(),
                roundResults.stream().mapToInt(Round::expected).sum(), roundResults.size(), N,
                roundResults.stream().filter(Round::complete).count()));
        md.append(String.format("- records lost: %d; duplicated: %d (goal 0)%n", lost(), duplicates));
        md.append(String.format("- unparseable or torn lines seen after any kill or round: %d (goal 0)%n", unparseable));
        md.append(String.format("- records whose content is not their key's item: %d (goal 0)%n", mismatched));
        if (!orphan.isEmpty()) {
            md.append(String.format("- orphan lifetime (kill -9 to no process of that TETHER_HOME alive), over the %d kills "
                    + "that hit a live run: median %d ms, longest %d ms (limit %d ms)%n", orphan.size(),
                    orphan.get(orphan.size() / 2), orphan.getLast(), ORPHAN_LIMIT.toMillis()));
        }
        md.append(String.format("- kills after which a lease file was left (no process alive): %d; leases still there "
                + "after the round's completing run: %d (goal 0)%n", kills.stream().filter(k -> k.leasesLeft > 0).count(),
                staleLeases));
        md.append(String.format("- total wall time: %.1f s%n", wall.toMillis() / 1000.0));
        md.append(String.format("- problems: %d%s%n", problems.size(), problems.isEmpty() ? "" : "\n\n```\n"
                + String.join("\n", problems) + "\n```"));
        md.append("\nEach kill:\n\n| # | round | aim | delay ms | landed | records before -> after | orphan ms | processes at kill | leases left | exit |\n"
                + "|---|---|---|---|---|---|---|---|---|---|\n");
        for (Kill k : kills) {
            md.append(String.format("| %d | %d | %s | %d | %s | %d -> %d | %d | %d | %d | %d |%n", k.number, k.round,
                    k.aim.name().toLowerCase(), k.delayMillis, k.phase.name().toLowerCase(), k.recordsBefore, k.recordsAfter,
                    k.orphanMillis, k.orphanProcesses, k.leasesLeft, k.exitCode));
        }
        return md.toString();
    }

    private boolean isPrompts(Kill k) {
        return roundResults.size() >= k.round && roundResults.get(k.round - 1).workload().equals("prompts");
    }

    private int lost() {
        return roundResults.stream().mapToInt(r -> Math.max(0, r.expected() - r.distinct())).sum();
    }
}
