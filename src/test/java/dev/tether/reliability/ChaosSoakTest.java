package dev.tether.reliability;

import static dev.tether.cli.TetherHomes.assertNoProcessesOf;
import static dev.tether.cli.TetherHomes.freeze;
import static dev.tether.cli.TetherHomes.healthServer;
import static dev.tether.cli.TetherHomes.processesOf;

import dev.tether.cli.BackgroundTether;
import dev.tether.cli.TetherCli;
import dev.tether.fixtures.DaemonizesTwice;
import dev.tether.fixtures.EscapesWithSetsid;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.ForksWhileStopping;
import dev.tether.fixtures.ForksWorkers;
import dev.tether.fixtures.IgnoresSigterm;
import dev.tether.fixtures.RecordsSignals;
import dev.tether.fixtures.ScrubsEnvironment;
import dev.tether.fixtures.BindsLate;
import dev.tether.proc.Member;
import dev.tether.proc.Membership;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Signal;
import dev.tether.proc.Signaller;
import dev.tether.server.Lease;
import dev.tether.server.LeaseStore;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The chaos soak of RELIABILITY.md: a seeded random sequence of operations — start, stop, restart, crash the
 * server, kill -9 one of its processes, kill -9 tether, kill -9 the watchdog (shim), orphan a server, start a
 * second tether on a taken port, hold a port with a foreign process, reap — over every fixture tree shape and
 * the embedded server. After every operation the invariants are checked:
 * <ol>
 *   <li>every process of this TETHER_HOME belongs to a live lease (its owner or its shim alive), to a tether
 *       JVM the soak runs, or to an orphan the soak made on purpose — or it dies within the grace;</li>
 *   <li>no lease whose owner and shim are dead survives the next start or {@code tether reap};</li>
 *   <li>no foreign process (started by the soak, outside tether) was signalled, stopped or killed;</li>
 *   <li>every port of a stopped server is free.</li>
 * </ol>
 * The seed is printed first; {@code -Dtether.reliability.seed=N} replays a run (the schedule of operations is
 * the seed's; what the processes do between them is the machine's).
 */
class ChaosSoakTest {
    private static final Duration UP = Duration.ofSeconds(90);
    /** Servers get a short grace, so the SIGTERM-ignoring shapes cost 1 s, not 10. */
    private static final Duration GRACE = Duration.ofSeconds(1);
    /** How long a process may outlive its manager: the grace, plus the watchdog's own reaction time. */
    private static final Duration SETTLE = GRACE.plusSeconds(9);
    private static final int MAX_SERVERS = 4;

    /** The server shapes: the fixture process trees of the fast suite, and tether's own engine. */
    enum Shape {
        HEALTH, FORKS_WORKERS, ESCAPES_WITH_SETSID, DAEMONIZES_TWICE, IGNORES_SIGTERM, FORKS_WHILE_STOPPING,
        SCRUBS_ENVIRONMENT, BINDS_LATE, EMBEDDED;

        /** The {@code serve} arguments for this shape, minus the port. */
        List<String> serveArgs() {
            if (this == EMBEDDED) {
                return List.of("--model", "tiny", "--grace", "1s");
            }
            return List.of("--command", template(), "--health", this == HEALTH ? "/health" : "none", "--grace", "1s");
        }

        String template() {
            return switch (this) {
                case HEALTH -> healthServer();
                case FORKS_WORKERS -> fixture(ForksWorkers.class, "--workers", "2");
                case ESCAPES_WITH_SETSID -> fixture(EscapesWithSetsid.class);
                case DAEMONIZES_TWICE -> fixture(DaemonizesTwice.class);
                case IGNORES_SIGTERM -> fixture(IgnoresSigterm.class, "--children", "1");
                case FORKS_WHILE_STOPPING -> fixture(ForksWhileStopping.class);
                case SCRUBS_ENVIRONMENT -> fixture(ScrubsEnvironment.class);
                case BINDS_LATE -> fixture(BindsLate.class, "--delay-ms", "300");
                case EMBEDDED -> throw new IllegalStateException("the embedded server has no command template");
            };
        }

        private static String fixture(Class<?> main, String... args) {
            List<String> all = new ArrayList<>(List.of("--port", "{port}"));
            all.addAll(List.of(args));
            return String.join(" ", Fixture.command(main, all.toArray(String[]::new)));
        }
    }

    enum Op {
        START(14), START_IN_PROCESS(5), SECOND_TETHER(6), START_ON_FOREIGN_PORT(4), HOLD_PORT(3), RELEASE_PORT(2),
        STOP_COMMAND(6), SIGTERM(4), SIGINT(3), STOP_IN_PROCESS(3), RESTART(5), CRASH_SERVER(6), KILL_SERVER_PROCESS(5),
        KILL_TETHER(7), KILL_SHIM(5), ORPHAN(3), KILL_TETHER_WHILE_STARTING(4), REAP(3);

        final int weight;

        Op(int weight) {
            this.weight = weight;
        }

        /** Operations that inject a fault (the others are what a user does). */
        boolean fault() {
            return switch (this) {
                case CRASH_SERVER, KILL_SERVER_PROCESS, KILL_TETHER, KILL_SHIM, ORPHAN, KILL_TETHER_WHILE_STARTING,
                     SECOND_TETHER, START_ON_FOREIGN_PORT, HOLD_PORT -> true;
                default -> false;
            };
        }
    }

    /** A server the soak started: through a {@code tether serve} JVM, or through this JVM's own ServerManager. */
    private static final class Server {
        final Shape shape;
        final int port;
        final BackgroundTether serve;    // null when in-process
        final ServerHandle handle;       // null when run by a serve JVM
        private final String leaseId;

        Server(Shape shape, int port, BackgroundTether serve, ServerHandle handle, String leaseId) {
            this.shape = shape;
            this.port = port;
            this.serve = serve;
            this.handle = handle;
            this.leaseId = leaseId;
        }

        /** The lease now: a restart gives the server a new lease id. */
        String leaseId() {
            return handle != null ? handle.lease().id() : leaseId;
        }

        boolean inProcess() {
            return handle != null;
        }

        @Override
        public String toString() {
            return shape + " on " + port + " (" + leaseId() + (inProcess() ? ", in-process" : ", serve pid " + serve.process.pid()) + ")";
        }
    }

    /** A process the soak started outside tether: it must never receive a signal from tether. */
    private record Foreign(Process process, ProcessIdentity identity, Path record, int port) {}

    @TempDir
    Path dir;

    private Path home;
    private long seed;
    private Random random;
    private ServerManager inProcess;
    private final List<Server> servers = new ArrayList<>();
    private final List<Foreign> foreign = new ArrayList<>();
    private final List<BackgroundTether> serveJvms = new ArrayList<>();
    /** Leases (id → port) whose owner and shim are both dead: each must be gone after the next start or reap. */
    private final Map<String, Integer> orphans = new HashMap<>();
    /** Ports of servers that ended: each must be free (checked after the settle). */
    private final Set<Integer> endedPorts = new HashSet<>();
    /** Every port handed out, so a new server never lands on a port a check still looks at. */
    private final Set<Integer> usedPorts = new HashSet<>();
    /**
     * Every process ever seen in a server's tree, with its lease: a member that scrubbed its environment
     * (so neither TETHER_HOME nor the lease marker finds it) is still checked once its lease is gone.
     */
    private final Map<ProcessIdentity, String> everMember = new HashMap<>();
    private final Deque<String> history = new ArrayDeque<>();
    private int opIndex;

    // figures
    private final Map<Op, Integer> done = new EnumMap<>(Op.class);
    private final Map<Shape, Integer> shapesStarted = new EnumMap<>(Shape.class);
    private final List<Long> outlivedMillis = new ArrayList<>();
    private int invariantChecks;
    private int orphansReaped;
    private int secondTetherReused;

    @AfterEach
    void tearDown() {
        for (BackgroundTether t : serveJvms) {
            if (t.process.isAlive()) {
                Signaller.send(t.identity(), Signal.TERM);
            }
        }
        for (BackgroundTether t : serveJvms) {
            try {
                t.process.waitFor(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            t.close();
        }
        if (inProcess != null) {
            inProcess.close();
        }
        try {
            TetherCli.run(home, "reap");   // the orphans the soak made on purpose, if a failure left some
        } catch (Exception e) {
            // judged below
        }
        for (Foreign f : foreign) {
            try {
                f.process().destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        assertNoProcessesOf(home);
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.MINUTES)   // the full soak (1,000 operations) takes ~20 min; the default is 2
    void invariantsHoldAfterEveryOperation() throws Exception {
        int operations = Reliability.size("ops", 40, 1000);
        seed = Reliability.seed();
        random = new Random(seed);
        home = dir.resolve("home");
        System.out.println("chaos soak: seed " + seed + ", " + operations + " operations (replay: -Dtether.reliability.seed="
                + seed + " -Dtether.reliability.ops=" + operations + ")");
        inProcess = new ServerManager(new TetherHome(home), ServerEvents.NONE);
        long began = System.nanoTime();

        // Bystanders for the whole soak: they hold no port, they just must never be touched.
        for (int i = 0; i < 2; i++) {
            foreign.add(startForeign(0));
        }
        for (opIndex = 1; opIndex <= operations; opIndex++) {
            pruneEnded();
            Op op = pick();
            note(op.name());
            try {
                run(op);
            } catch (AssertionError e) {
                throw e;
            } catch (Exception e) {
                AssertionError failure = fail(e.toString());
                failure.initCause(e);
                throw failure;
            }
            done.merge(op, 1, Integer::sum);
            checkInvariants(op);
        }
        long wallSeconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - began);
        report(operations, wallSeconds);
    }

    /**
     * Servers that ended on their own since the last operation: a daemonized tree whose last process was
     * killed is over, and its tether must have noticed, stopped what was left and (a serve JVM) exited 1.
     */
    private void pruneEnded() throws Exception {
        for (Server server : List.copyOf(servers)) {
            if (server.inProcess() ? !server.handle.isAlive() : !server.serve.process.isAlive()) {
                if (server.inProcess()) {
                    server.handle.stop();
                } else {
                    int code = server.serve.awaitExit(UP);
                    expect(code == 1, "serve whose server ended exited " + code + "\n" + output(server.serve));
                }
                note("  ended on its own: " + server);
                ended(server);
            }
        }
    }

    // ---- choosing and running operations ----

    private Op pick() {
        List<Op> possible = new ArrayList<>();
        for (Op op : Op.values()) {
            if (applicable(op)) {
                possible.add(op);
            }
        }
        int total = possible.stream().mapToInt(op -> op.weight).sum();
        int draw = random.nextInt(total);
        for (Op op : possible) {
            draw -= op.weight;
            if (draw < 0) {
                return op;
            }
        }
        throw new IllegalStateException();
    }

    private boolean applicable(Op op) {
        boolean room = servers.size() < MAX_SERVERS;
        boolean anyCli = servers.stream().anyMatch(s -> !s.inProcess());
        boolean anyInProcess = servers.stream().anyMatch(Server::inProcess);
        boolean holders = foreign.stream().anyMatch(f -> f.port() > 0);
        return switch (op) {
            case START, START_IN_PROCESS, KILL_TETHER_WHILE_STARTING -> room;
            case SECOND_TETHER, CRASH_SERVER, KILL_SERVER_PROCESS, KILL_SHIM -> !servers.isEmpty();
            case START_ON_FOREIGN_PORT, RELEASE_PORT -> holders;
            case HOLD_PORT -> foreign.stream().filter(f -> f.port() > 0).count() < 2;
            case STOP_COMMAND, SIGTERM, SIGINT, KILL_TETHER, ORPHAN -> anyCli;
            case STOP_IN_PROCESS, RESTART -> anyInProcess;
            case REAP -> true;
        };
    }

    private void run(Op op) throws Exception {
        switch (op) {
            case START -> startServe(randomShape(true));
            case START_IN_PROCESS -> startInProcess(randomShape(false));
            case SECOND_TETHER -> secondTether(any(s -> true));
            case START_ON_FOREIGN_PORT -> startOnForeignPort();
            case HOLD_PORT -> foreign.add(startForeign(newPort()));
            case RELEASE_PORT -> releasePort();
            case STOP_COMMAND -> stopCommand(any(s -> !s.inProcess()));
            case SIGTERM -> signalServe(any(s -> !s.inProcess()), Signal.TERM, 143);
            case SIGINT -> signalServe(any(s -> !s.inProcess()), Signal.INT, 130);
            case STOP_IN_PROCESS -> stopInProcess(any(Server::inProcess));
            case RESTART -> restart(any(Server::inProcess));
            case CRASH_SERVER -> crashServer(any(s -> true));
            case KILL_SERVER_PROCESS -> killServerProcess(any(s -> true));
            case KILL_TETHER -> killTether(any(s -> !s.inProcess()));
            case KILL_SHIM -> killShim(any(s -> true));
            case ORPHAN -> orphan(any(s -> !s.inProcess()));
            case KILL_TETHER_WHILE_STARTING -> killTetherWhileStarting(randomShape(false));
            case REAP -> reap();
        }
    }

    private Shape randomShape(boolean embeddedAllowed) {
        boolean embeddedRunning = servers.stream().anyMatch(s -> s.shape == Shape.EMBEDDED);
        // The embedded server is the slowest to start: one in ten starts, one at a time.
        if (embeddedAllowed && !embeddedRunning && random.nextInt(10) == 0) {
            return Shape.EMBEDDED;
        }
        Shape[] fixtures = java.util.Arrays.stream(Shape.values()).filter(s -> s != Shape.EMBEDDED).toArray(Shape[]::new);
        return fixtures[random.nextInt(fixtures.length)];
    }

    private Server any(Predicate<Server> which) {
        List<Server> candidates = servers.stream().filter(which).toList();
        return candidates.get(random.nextInt(candidates.size()));
    }

    private int newPort() {
        while (true) {
            int port = Fixture.freePort();
            if (usedPorts.add(port)) {
                return port;
            }
        }
    }

    private BackgroundTether launchServe(Shape shape, int port, String... extra) throws IOException {
        List<String> args = new ArrayList<>(List.of("serve"));
        args.addAll(shape.serveArgs());
        args.addAll(List.of("--port", String.valueOf(port)));
        args.addAll(List.of(extra));
        BackgroundTether t = BackgroundTether.start(home, dir, args.toArray(String[]::new));
        serveJvms.add(t);
        return t;
    }

    private void startServe(Shape shape) throws Exception {
        int port = newPort();
        BackgroundTether serve = launchServe(shape, port);
        serve.awaitLine("Serving until", UP);
        String id = leaseOn(port).map(Lease::id).orElseThrow(() -> fail("no lease on port " + port + " after Ready"));
        Server server = new Server(shape, port, serve, null, id);
        servers.add(server);
        shapesStarted.merge(shape, 1, Integer::sum);
        note("  started " + server);
    }

    private void startInProcess(Shape shape) throws Exception {
        int port = newPort();
        var profile = Profiles.command(shape.template(), shape == Shape.HEALTH ? "/health" : null)
                .withStartupTimeout(UP);
        ServerHandle handle = inProcess.start(new ServerSpec("chaos-" + shape, profile, "127.0.0.1", port, GRACE));
        Server server = new Server(shape, port, null, handle, handle.lease().id());
        servers.add(server);
        shapesStarted.merge(shape, 1, Integer::sum);
        note("  started " + server);
    }

    /** Another tether asks for a port that a managed server holds: the same server is used, another is refused. */
    private void secondTether(Server target) throws Exception {
        Set<ProcessIdentity> before = members(target.leaseId());
        boolean same = !target.inProcess() && random.nextBoolean();
        Shape shape = same ? target.shape : otherFixtureShape(target.shape);
        BackgroundTether second = launchServe(shape, target.port, "--startup-timeout", "5s");
        Poll.until(() -> !second.process.isAlive() || second.out().contains("Serving until"), UP);
        if (second.process.isAlive()) {
            // It started a server of its own. Right only if the first one had ended in the meantime (its
            // last process killed earlier, and its tether not yet done noticing): then it is just a start.
            expect(lease(target.leaseId()).isEmpty(), "a second tether started a server while " + target
                    + " still held the port\n" + output(second));
            String id = leaseOn(target.port).map(Lease::id).orElseThrow(() -> fail("no lease for the second tether"));
            servers.add(new Server(shape, target.port, second, null, id));
            note("  the first had ended; the second tether started its own: " + id);
            return;
        }
        int code = second.awaitExit(UP);
        note("  second tether (" + (same ? "same server" : shape) + ") on " + target + " exited " + code);
        if (same) {
            // Reused when the server answers; if one of its processes was killed and it no longer answers,
            // the second tether waits for it and gives up (3). Never started a second one.
            expect(code == 0 || code == 3, "second tether for the same server exited " + code + "\n" + output(second));
            if (code == 0) {
                expect(second.out().contains("Using running server"), "no 'Using running server':\n" + second.out());
                secondTetherReused++;
            }
        } else {
            expect(code == 4, "second tether with another server on a taken port exited " + code + "\n" + output(second));
        }
        expect(!second.out().contains("Starting server"), "the second tether started a server:\n" + second.out());
        Set<ProcessIdentity> after = members(target.leaseId());
        expect(after.containsAll(before.stream().filter(ProcessIdentity::isAlive).toList()),
                "the second tether touched the first's processes: before " + before + ", after " + after);
    }

    private Shape otherFixtureShape(Shape not) {
        while (true) {
            Shape s = randomShape(false);
            if (s != not) {
                return s;
            }
        }
    }

    private void startOnForeignPort() throws Exception {
        Foreign holder = foreign.stream().filter(f -> f.port() > 0).toList().getFirst();
        BackgroundTether t = launchServe(randomShape(false), holder.port());
        int code = t.awaitExit(UP);
        expect(code == 4, "start on a foreign port exited " + code + "\n" + output(t));
        expect(t.err().contains(String.valueOf(holder.identity().pid())), "the error does not name the holder:\n" + t.err());
    }

    private Foreign startForeign(int port) throws Exception {
        Path record = Files.createTempFile(dir, "signals", ".txt");
        List<String> command = new ArrayList<>(Fixture.command(RecordsSignals.class, "--record", record.toString()));
        if (port > 0) {
            command.addAll(List.of("--port", String.valueOf(port)));
        }
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("foreign-" + opIndex + ".log").toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        if (port > 0) {
            Fixture.awaitListening(port, UP);
        } else {
            expect(Poll.until(() -> Files.exists(dir.resolve("foreign-" + opIndex + ".log"))
                            && readQuietly(dir.resolve("foreign-" + opIndex + ".log")).startsWith("ready"), UP),
                    "foreign bystander did not start");
        }
        return new Foreign(process, ProcessIdentity.of((int) process.pid()).orElseThrow(), record, port);
    }

    private void releasePort() throws Exception {
        Foreign holder = foreign.stream().filter(f -> f.port() > 0).toList().getFirst();
        foreign.remove(holder);
        holder.process().destroyForcibly().waitFor();   // the soak's own process: the soak may kill it
        endedPorts.add(holder.port());
    }

    private void stopCommand(Server server) throws Exception {
        var result = TetherCli.run(home, "stop", server.leaseId());
        expect(result.exitCode() == 0, "tether stop exited " + result.exitCode() + ": " + result.err());
        int code = server.serve.awaitExit(UP);
        expect(code == 0, "serve stopped from outside (" + server + ") exited " + code + "\n" + output(server.serve)
                + "tether stop said:\n" + result.out() + result.err());
        ended(server);
    }

    private void signalServe(Server server, Signal signal, int expected) throws Exception {
        Signaller.send(server.serve.identity(), signal);
        int code = server.serve.awaitExit(UP);
        expect(code == expected, "serve after " + signal + " exited " + code + "\n" + output(server.serve));
        ended(server);
    }

    private void stopInProcess(Server server) {
        server.handle.stop();
        ended(server);
    }

    private void restart(Server server) throws Exception {
        Set<ProcessIdentity> old = members(server.leaseId());
        server.handle.restart();
        expect(server.handle.isAlive(), "not alive after restart");
        expect(old.stream().noneMatch(ProcessIdentity::isAlive), "a process of the old server survived the restart: " + old);
        expect(Poll.until(() -> PortListeners.isListening(server.port), UP), "port " + server.port + " not listening after restart");
    }

    /** kill -9 of the server's root process. */
    private void crashServer(Server server) throws Exception {
        Optional<Lease> lease = lease(server.leaseId());
        ProcessIdentity root = lease.map(Lease::server).orElse(null);
        if (root == null || !root.isAlive()) {
            killServerProcess(server);   // it daemonized (or already died): kill what there is
            return;
        }
        Signaller.send(root, Signal.KILL);
        afterServerDeath(server, root);
    }

    /** kill -9 of one process of the server's tree, picked at random. */
    private void killServerProcess(Server server) throws Exception {
        List<Member> members = lease(server.leaseId()).map(l -> new ProcessTree(l.membership()).members()).orElse(List.of());
        if (members.isEmpty()) {
            note("  no live member to kill");
            return;
        }
        Member victim = members.get(random.nextInt(members.size()));
        Signaller.send(victim.identity(), Signal.KILL);
        note("  killed member " + victim.pid() + " of " + server);
        ProcessIdentity root = lease(server.leaseId()).map(Lease::server).orElse(null);
        if (victim.identity().equals(root)) {
            afterServerDeath(server, root);
        }
    }

    /** The root died: a serve JVM stops the rest and exits 1; in-process, the soak restarts it or stops it. */
    private void afterServerDeath(Server server, ProcessIdentity root) throws Exception {
        expect(Poll.until(() -> !root.isAlive(), UP), "root " + root + " did not die after SIGKILL");
        if (!server.inProcess()) {
            int code = server.serve.awaitExit(UP);
            expect(code == 1, "serve after its server crashed exited " + code + "\n" + output(server.serve));
            ended(server);
        } else {
            server.handle.onExit().get(UP.toSeconds(), TimeUnit.SECONDS);
            if (random.nextBoolean()) {
                server.handle.restart();
                expect(Poll.until(() -> PortListeners.isListening(server.port), UP), "not listening after restart");
            } else {
                server.handle.stop();
                ended(server);
            }
        }
    }

    private void killTether(Server server) throws Exception {
        long killedAt = System.nanoTime();
        Signaller.send(server.serve.identity(), Signal.KILL);
        server.serve.awaitExit(UP);
        awaitGone(server.leaseId(), killedAt, "after kill -9 of its tether");
        ended(server);
    }

    private void killShim(Server server) throws Exception {
        Lease lease = lease(server.leaseId()).orElseThrow(() -> fail("no lease for " + server));
        if (lease.shim() == null || !lease.shim().isAlive()) {
            note("  shim already gone");
            return;
        }
        long killedAt = System.nanoTime();
        Signaller.send(lease.shim(), Signal.KILL);
        // The tether that owns it notices and stops the tree itself (DESIGN 5: the shim watches tether, and
        // tether watches the shim).
        awaitGone(server.leaseId(), killedAt, "after kill -9 of its shim");
        if (server.inProcess()) {
            server.handle.stop();
        } else {
            int code = server.serve.awaitExit(UP);
            expect(code == 1, "serve whose shim was killed exited " + code + "\n" + output(server.serve));
        }
        ended(server);
    }

    /** Owner and watchdog both die (the shim frozen first, so it cannot react): a true orphan. */
    private void orphan(Server server) throws Exception {
        Lease lease = lease(server.leaseId()).orElseThrow(() -> fail("no lease for " + server));
        freeze(lease.shim());
        Signaller.send(server.serve.identity(), Signal.KILL);
        server.serve.awaitExit(UP);
        Signaller.send(lease.shim(), Signal.KILL);
        expect(Poll.until(() -> !lease.shim().isAlive(), UP), "shim " + lease.shim() + " survived SIGKILL");
        orphans.put(lease.id(), server.port);   // its port is freed by the reaping, not now
        servers.remove(server);
        note("  orphaned " + server);
    }

    private void killTetherWhileStarting(Shape shape) throws Exception {
        int port = newPort();
        BackgroundTether serve = launchServe(shape, port);
        long delayMillis = random.nextInt(2500);
        // The experiment is the moment: wait (with a deadline) for it, or for the serve to be up already.
        Poll.until(() -> serve.out().contains("Serving until"), Duration.ofMillis(delayMillis));
        long killedAt = System.nanoTime();
        Signaller.send(serve.identity(), Signal.KILL);
        serve.awaitExit(UP);
        Optional<String> id = leaseOn(port).map(Lease::id);
        note("  killed serve " + delayMillis + " ms into its start (" + (serve.out().contains("Ready:") ? "ready" : "not ready")
                + ", lease " + id.orElse("none") + ")");
        if (id.isPresent()) {
            awaitGone(id.get(), killedAt, "after kill -9 of its tether while starting");
        }
        endedPorts.add(port);
    }

    private void reap() throws Exception {
        var result = TetherCli.run(home, "reap");
        expect(result.exitCode() == 0, "tether reap exited " + result.exitCode() + ": " + result.err());
    }

    // ---- bookkeeping ----

    private void ended(Server server) {
        servers.remove(server);
        if (servers.stream().noneMatch(other -> other.port == server.port)) {   // a second tether may hold it now
            endedPorts.add(server.port);
        }
    }

    /** Waits until the lease's processes, shim and file are gone; records how long they outlived the kill. */
    private void awaitGone(String leaseId, long killedAt, String when) {
        Optional<Lease> lease = lease(leaseId);
        Set<ProcessIdentity> shims = lease.map(Lease::shim).stream().collect(Collectors.toSet());
        // The lease file goes with its shim; a tether killed before it started a shim leaves the file alone,
        // an orphan that the next start or reap removes (checked with the invariants).
        boolean gone = Poll.until(() -> processesWithLease(leaseId).isEmpty() && shims.stream().noneMatch(ProcessIdentity::isAlive)
                && lease(leaseId).map(l -> l.shim() == null).orElse(true), SETTLE, Duration.ofMillis(5));
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killedAt);
        expect(gone, "lease " + leaseId + " " + when + ": still there after " + millis + " ms: processes "
                + describe(processesWithLease(leaseId)) + ", lease file " + lease(leaseId).isPresent());
        outlivedMillis.add(millis);
    }

    private Optional<Lease> lease(String id) {
        return new LeaseStore(new TetherHome(home)).read(id);
    }

    private List<Lease> leases() {
        return new LeaseStore(new TetherHome(home)).list();
    }

    private Optional<Lease> leaseOn(int port) {
        return leases().stream().filter(l -> l.port() == port).findFirst();
    }

    private Set<ProcessIdentity> members(String leaseId) {
        return lease(leaseId).map(l -> new ProcessTree(l.membership()).members().stream().map(Member::identity)
                .collect(Collectors.toSet())).orElse(Set.of());
    }

    private static List<ProcessIdentity> processesWithLease(String leaseId) {
        List<ProcessIdentity> found = new ArrayList<>();
        for (int pid : ProcFs.pids()) {
            if (ProcFs.environValue(pid, Membership.LEASE_ENV).filter(leaseId::equals).isPresent()) {
                ProcessIdentity.of(pid).filter(ProcessIdentity::isAlive).ifPresent(found::add);
            }
        }
        return found;
    }

    // ---- the invariants ----

    private void checkInvariants(Op op) {
        invariantChecks++;
        // 3. Foreign processes: alive, not stopped, never signalled.
        for (Foreign f : foreign) {
            expect(f.identity().isAlive(), "foreign process " + f.identity() + " was killed");
            expect(ProcFs.stat(f.identity().pid()).map(s -> s.state() != 'T').orElse(false),
                    "foreign process " + f.identity() + " was stopped");
            String signals = readQuietly(f.record());
            expect(signals.isEmpty(), "foreign process " + f.identity() + " received: " + signals.strip());
        }

        // 2. After a start or a reap, no lease whose owner and shim are dead is left.
        boolean reaps = switch (op) {
            case START, START_IN_PROCESS, SECOND_TETHER, START_ON_FOREIGN_PORT, REAP -> true;
            default -> false;
        };
        if (reaps) {
            List<Lease> left = leases().stream().filter(Lease::isOrphan).toList();
            expect(left.isEmpty(), "orphan leases survived a " + op + ": " + left.stream().map(Lease::id).toList());
            for (String id : orphans.keySet()) {
                expect(processesWithLease(id).isEmpty(), "processes of reaped orphan " + id + " alive: "
                        + describe(processesWithLease(id)));
            }
            orphansReaped += orphans.size();
            endedPorts.addAll(orphans.values());
            orphans.clear();
        }

        // 1. Every process of this home is accounted for, or dies within the grace.
        everMember.keySet().removeIf(p -> !p.isAlive());
        for (Lease lease : leases()) {
            members(lease.id()).forEach(p -> everMember.put(p, lease.id()));
        }
        boolean settled = Poll.until(() -> unaccounted().isEmpty(), SETTLE, Duration.ofMillis(10));
        expect(settled, "processes belong to no live lease, tether or orphan:\n  "
                + String.join("\n  ", unaccounted().stream().map(p -> p + " " + ProcFs.commandLine(p.pid())).toList()));
        // ... and so does every lease (an orphan not made on purpose must at least be one the next start reaps).
        for (Lease lease : leases()) {
            if (lease.isOrphan() && !orphans.containsKey(lease.id())) {
                orphans.put(lease.id(), lease.port());   // counted; the next start or reap must remove it
                note("  lease " + lease.id() + " left without owner or shim (to be reaped)");
            }
        }

        // 4. Ports of ended servers are free.
        for (int port : endedPorts) {
            boolean free = Poll.until(() -> !PortListeners.isListening(port), SETTLE, Duration.ofMillis(10));
            expect(free, "port " + port + " of a stopped server still listens: " + PortListeners.holderPids(port));
        }
        endedPorts.clear();
    }

    /** Processes of this home that no live lease, serve JVM or deliberate orphan explains. */
    private List<ProcessIdentity> unaccounted() {
        List<Lease> leases = leases();
        Set<String> explained = new HashSet<>(orphans.keySet());
        Set<ProcessIdentity> shims = new HashSet<>();
        for (Lease lease : leases) {
            if (!lease.isOrphan() || orphans.containsKey(lease.id())) {
                explained.add(lease.id());
                if (lease.shim() != null) {
                    shims.add(lease.shim());
                }
            }
        }
        Set<Long> serving = new HashSet<>();
        for (BackgroundTether t : serveJvms) {
            if (t.process.isAlive()) {
                serving.add(t.process.pid());
            }
        }
        List<ProcessIdentity> left = new ArrayList<>();
        for (ProcessIdentity p : processesOf(home)) {
            if (serving.contains((long) p.pid()) || shims.contains(p)) {
                continue;
            }
            Optional<String> leaseId = ProcFs.environValue(p.pid(), Membership.LEASE_ENV);
            if (leaseId.isPresent() && explained.contains(leaseId.get())) {
                continue;
            }
            left.add(p);
        }
        everMember.forEach((p, leaseId) -> {
            if (!explained.contains(leaseId) && !left.contains(p) && p.isAlive()) {
                left.add(p);
            }
        });
        return left;
    }

    // ---- failure reports ----

    private void note(String line) {
        history.addLast("#" + opIndex + " " + line);
        if (history.size() > 40) {
            history.removeFirst();
        }
    }

    private void expect(boolean condition, String message) {
        if (!condition) {
            throw fail(message);
        }
    }

    private AssertionError fail(String message) {
        return new AssertionError("chaos soak, seed " + seed + ", operation " + opIndex + ": " + message
                + "\nlast operations:\n  " + String.join("\n  ", history));
    }

    private static String describe(List<ProcessIdentity> processes) {
        return processes.stream().map(p -> p.pid() + " " + ProcFs.commandLine(p.pid())).toList().toString();
    }

    /** A tether's stdout and stderr, for a failure message. */
    private static String output(BackgroundTether t) {
        return "stdout:\n" + t.out() + "stderr:\n" + t.err();
    }

    private static String readQuietly(Path file) {
        try {
            return Files.exists(file) ? Files.readString(file) : "";
        } catch (IOException e) {
            return "";
        }
    }

    private void report(int operations, long wallSeconds) {
        int faults = done.entrySet().stream().filter(e -> e.getKey().fault()).mapToInt(Map.Entry::getValue).sum();
        List<Long> sorted = outlivedMillis.stream().sorted().toList();
        StringBuilder md = new StringBuilder();
        md.append("| figure | value |\n|---|---|\n");
        md.append("| seed | ").append(seed).append(" |\n");
        md.append("| operations run | ").append(operations).append(" |\n");
        md.append("| faults injected | ").append(faults).append(" |\n");
        md.append("| invariant checks passed | ").append(invariantChecks).append(" |\n");
        md.append("| processes leaked | 0 |\n| foreign processes harmed | 0 (").append(foreign.size())
                .append(" bystanders and port holders alive at the end, none signalled) |\n");
        md.append("| orphans reaped by the next start or `reap` | ").append(orphansReaped).append(" |\n");
        md.append("| second tethers that reused the running server | ").append(secondTetherReused).append(" |\n");
        md.append("| managers killed (tether or shim), then tree gone after: median / longest | ")
                .append(sorted.isEmpty() ? "-" : sorted.get(sorted.size() / 2) + " ms / " + sorted.getLast() + " ms")
                .append(" (").append(sorted.size()).append(" cases) |\n");
        md.append("| wall time | ").append(wallSeconds).append(" s |\n\n");
        md.append("| operation | count |\n|---|---|\n");
        done.forEach((op, n) -> md.append("| ").append(op.name().toLowerCase().replace('_', ' ')).append(op.fault() ? " (fault)" : "")
                .append(" | ").append(n).append(" |\n"));
        md.append("\n| shape started | count |\n|---|---|\n");
        shapesStarted.forEach((s, n) -> md.append("| ").append(s.name().toLowerCase().replace('_', ' ')).append(" | ").append(n).append(" |\n"));
        Reliability.report("chaos-soak", md.toString());
    }
}
