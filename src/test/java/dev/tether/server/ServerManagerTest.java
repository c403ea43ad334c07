package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.tether.fixtures.DaemonizesTwice;
import dev.tether.fixtures.EscapesWithSetsid;
import dev.tether.fixtures.ExitsAtOnce;
import dev.tether.fixtures.Fixture;
import dev.tether.fixtures.ForksWorkers;
import dev.tether.fixtures.HealthServer;
import dev.tether.fixtures.IgnoresSigterm;
import dev.tether.fixtures.ScrubsEnvironment;
import dev.tether.fixtures.Worker;
import dev.tether.proc.Membership;
import dev.tether.proc.Poll;
import dev.tether.proc.PortListeners;
import dev.tether.proc.ProcFs;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.proc.TreeStopper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link ServerManager} as a library, against real fixture servers run through the {@code command}
 * profile, each under its own shim: readiness, the startup deadline, crashes, restarts, every tree
 * shape, the port rules (reuse, foreign listener, another model) and two starts racing for a port.
 */
class ServerManagerTest {
    static final Duration UP = Duration.ofSeconds(30);
    static final Duration GRACE = Duration.ofSeconds(5);
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    @TempDir
    Path dir;

    private TetherHome home;
    private Recorder events;
    private ServerManager manager;
    private final List<ServerManager> managers = new ArrayList<>();

    @BeforeEach
    void setUp() {
        home = new TetherHome(dir.resolve("home"));
        events = new Recorder();
        manager = manager(events);
    }

    @AfterEach
    void tearDown() {
        managers.forEach(ServerManager::close);
    }

    private ServerManager manager(ServerEvents recorder) {
        ServerManager m = new ServerManager(home, recorder);
        managers.add(m);
        return m;
    }

    // ---- helpers ----

    /** A {@code command} template running a fixture main in a fresh JVM. */
    static String template(Class<?> main, String... args) {
        return String.join(" ", Fixture.command(main, args));
    }

    /** A HealthServer on {port} with extra arguments, ready on GET /health. */
    static Profile healthServer(String... args) {
        List<String> all = new ArrayList<>(List.of("--port", "{port}"));
        all.addAll(List.of(args));
        return Profiles.command(template(HealthServer.class, all.toArray(String[]::new)), "/health")
                .withStartupTimeout(Duration.ofSeconds(60));
    }

    /** A fixture without HTTP: ready as soon as its port listens. */
    static Profile listener(Class<?> main, String... args) {
        return Profiles.command(template(main, args), null).withStartupTimeout(Duration.ofSeconds(60));
    }

    static ServerSpec spec(Profile profile, int port) {
        return new ServerSpec("fixture", profile, "127.0.0.1", port, GRACE);
    }

    static int status(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (Exception e) {
            return -1;
        }
    }

    static List<?> members(Lease lease) {
        return new ProcessTree(lease.membership()).members();
    }

    static void awaitMembers(Lease lease, int count) {
        ProcessTree tree = new ProcessTree(lease.membership());
        assertThat(Poll.until(() -> tree.members().size() >= count, UP, Duration.ofMillis(20)))
                .as("server %s reaches %d members (has %s)", lease.id(), count, tree.members()).isTrue();
    }

    /** Everything a stop promises: no member alive, shim gone, lease file gone, port free. */
    static void assertGone(TetherHome home, Lease lease) {
        assertThat(members(lease)).as("members of %s", lease.id()).isEmpty();
        assertThat(lease.shim()).as("shim identity recorded").isNotNull();
        assertThat(lease.shim().isAlive()).as("shim of %s alive", lease.id()).isFalse();
        assertThat(home.leases().resolve(lease.id() + ".json")).doesNotExist();
        assertThat(PortListeners.isListening(lease.port())).as("port %d listens", lease.port()).isFalse();
    }

    static List<Path> leaseFiles(TetherHome home) throws Exception {
        if (!Files.isDirectory(home.leases())) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(home.leases())) {
            return files.filter(p -> !p.getFileName().toString().equals(".lock")).toList();
        }
    }

    /** Records what the manager reports, one "kind id-or-message" line each. */
    static final class Recorder implements ServerEvents {
        final List<String> lines = new CopyOnWriteArrayList<>();
        final List<Lease> started = new CopyOnWriteArrayList<>();

        @Override
        public void starting(Lease lease) {
            started.add(lease);
            lines.add("starting " + lease.id());
        }

        @Override
        public void ready(Lease lease, String baseUrl, Duration took) {
            lines.add("ready " + lease.id() + " " + baseUrl);
        }

        @Override
        public void reusing(Lease lease, String baseUrl) {
            lines.add("reusing " + lease.id() + " " + baseUrl);
        }

        @Override
        public void reaped(Lease lease, StopReport report) {
            lines.add("reaped " + lease.id());
        }

        @Override
        public void stopped(Lease lease, String summary) {
            lines.add("stopped " + lease.id());
        }

        @Override
        public void waiting(String message) {
            lines.add("waiting " + message);
        }

        List<String> of(String kind) {
            return lines.stream().filter(l -> l.startsWith(kind + " ")).toList();
        }
    }

    // ---- start, readiness, stop ----

    @Test
    void aHealthyServerIsStartedRecordedAndStoppedWithItsWholeTree() throws Exception {
        int port = Fixture.freePort();
        Lease lease;
        try (ServerHandle server = manager.start(spec(healthServer(), port))) {
            lease = server.lease();
            assertThat(server.owned()).isTrue();
            assertThat(server.isAlive()).isTrue();
            assertThat(server.baseUrl()).isEqualTo("http://127.0.0.1:" + port);
            assertThat(status(server.baseUrl() + "/health")).isEqualTo(200);
            assertThat(events.lines).containsExactly("starting " + lease.id(), "ready " + lease.id() + " " + server.baseUrl());

            // The lease names everything a later tether needs to find and stop this tree.
            Lease recorded = manager.lease(lease.id()).orElseThrow();
            assertThat(recorded.state()).isEqualTo(Lease.State.READY);
            assertThat(recorded.port()).isEqualTo(port);
            assertThat(recorded.argv()).contains(String.valueOf(port)).doesNotContain("{port}");
            assertThat(recorded.owner()).isEqualTo(ProcessIdentity.current());
            assertThat(recorded.server()).isNotNull();
            assertThat(recorded.server().isAlive()).isTrue();
            assertThat(recorded.pgid()).isEqualTo(recorded.server().pid());
            assertThat(recorded.shim().isAlive()).isTrue();
            assertThat(PortListeners.holderPids(port)).containsExactly(recorded.server().pid());
            assertThat(ProcFs.environValue(recorded.server().pid(), Membership.LEASE_ENV)).contains(lease.id());
            assertThat(ProcFs.stat(recorded.server().pid()).orElseThrow().ppid()).as("the shim is the server's parent")
                    .isEqualTo(recorded.shim().pid());
            assertThat(Poll.until(() -> manager.lease(lease.id()).orElseThrow().members().contains(recorded.server()), UP))
                    .as("the shim records the members").isTrue();
            Path log = Path.of(recorded.logPath());
            assertThat(log.getParent()).isEqualTo(home.logs());
            assertThat(Fixture.awaitReady(log, HealthServer.class, 1, UP)).containsExactly(recorded.server().pid());
            assertThat(manager.leases()).extracting(Lease::id).containsExactly(lease.id());
        }
        assertGone(home, lease);
        assertThat(events.of("stopped")).containsExactly("stopped " + lease.id());
        assertThat(Files.readString(Path.of(lease.logPath()))).contains("[tether] server stopped");
    }

    @Test
    void startReturnsOnlyOnceTheHealthCheckAnswers200() throws Exception {
        int port = Fixture.freePort();
        long t0 = System.nanoTime();
        ServerHandle server = manager.start(spec(healthServer("--ready-after-ms", "1500"), port));
        Duration took = Duration.ofNanos(System.nanoTime() - t0);
        // The server answers 503 for 1.5 s after it listens: start() cannot have returned earlier.
        assertThat(took).isGreaterThanOrEqualTo(Duration.ofMillis(1500));
        assertThat(status(server.baseUrl() + "/health")).isEqualTo(200);
        Lease lease = server.lease();
        server.stop();
        assertGone(home, lease);
        assertThat(server.isAlive()).isFalse();
        assertThat(server.stop()).as("a second stop").isEqualTo("nothing to stop");
    }

    @Test
    void aServerThatNeverGetsHealthyFailsAtTheDeadlineAndIsStopped() throws Exception {
        int port = Fixture.freePort();
        Profile never = healthServer("--ready-after-ms", "600000").withStartupTimeout(Duration.ofSeconds(2));
        long t0 = System.nanoTime();
        ServerStartException e = catchThrowableOfType(ServerStartException.class, () -> manager.start(spec(never, port)));
        Duration took = Duration.ofNanos(System.nanoTime() - t0);

        assertThat(e).as("start fails").isNotNull();
        assertThat(e.getMessage()).contains("not ready after 2 s").contains("/health");
        assertThat(e.logTail()).contains("ready HealthServer");
        assertThat(took).isBetween(Duration.ofSeconds(2), Duration.ofSeconds(20));
        Lease lease = events.started.getFirst();
        assertThat(members(lease)).isEmpty();
        assertThat(PortListeners.isListening(port)).isFalse();
        assertThat(leaseFiles(home)).isEmpty();
    }

    @Test
    void aServerThatExitsAtOnceFailsFastWithItsExitCodeAndLog() throws Exception {
        int port = Fixture.freePort();
        Profile exits = Profiles.command(template(ExitsAtOnce.class, "--code", "1", "--message", "fatal:_no_GPU_found"), "/health");
        long t0 = System.nanoTime();
        ServerStartException e = catchThrowableOfType(ServerStartException.class, () -> manager.start(spec(exits, port)));
        Duration took = Duration.ofNanos(System.nanoTime() - t0);

        assertThat(e).as("start fails").isNotNull();
        assertThat(e.getMessage()).contains("exited with code 1");
        assertThat(e.logTail()).contains("fatal:_no_GPU_found");
        assertThat(took).as("fails at once, not at the 600 s deadline").isLessThan(Duration.ofSeconds(15));
        assertThat(members(events.started.getFirst())).isEmpty();
        assertThat(leaseFiles(home)).isEmpty();
    }

    @Test
    void aServerThatCrashesLaterIsNoticedAndRestartBringsItBackOnTheSamePort() throws Exception {
        int port = Fixture.freePort();
        ServerHandle server = manager.start(spec(healthServer("--crash-after-ms", "2000"), port));
        Lease first = server.lease();
        assertThat(server.onExit().get(UP.toSeconds(), TimeUnit.SECONDS)).as("root's exit code").isEqualTo(1);
        assertThat(server.isAlive()).isFalse();
        assertThat(server.exitCode()).contains(1);

        server.restart();
        assertThat(status(server.baseUrl() + "/health")).isEqualTo(200);
        assertThat(server.port()).isEqualTo(port);
        assertThat(server.lease().id()).isNotEqualTo(first.id());
        assertThat(server.isAlive()).isTrue();
        assertThat(server.restarts()).isEqualTo(1);
        assertThat(members(first)).isEmpty();
        assertThat(first.shim().isAlive()).isFalse();
        assertThat(home.leases().resolve(first.id() + ".json")).doesNotExist();
        Lease second = server.lease();
        server.stop();
        assertGone(home, second);
    }

    @Test
    void aServerRestartedAfterStopIsStillStoppedByTheManager() throws Exception {
        int port = Fixture.freePort();
        ServerHandle server = manager.start(spec(healthServer(), port));
        server.stop();
        server.restart();
        Lease again = server.lease();
        assertThat(status(server.baseUrl() + "/health")).isEqualTo(200);
        manager.close();   // what the shutdown hook does too
        assertGone(home, again);
    }

    /** Each tree shape of the seed note and DESIGN 3, behind the shim: start, restart, stop. */
    static Stream<Arguments> shapes() {
        return Stream.of(
                Arguments.of("HealthServer", healthServer(), 1),
                Arguments.of("ForksWorkers", listener(ForksWorkers.class, "--port", "{port}", "--workers", "2"), 3),
                Arguments.of("EscapesWithSetsid", listener(EscapesWithSetsid.class, "--port", "{port}"), 2),
                Arguments.of("DaemonizesTwice", listener(DaemonizesTwice.class, "--port", "{port}"), 1),
                Arguments.of("IgnoresSigterm", listener(IgnoresSigterm.class, "--port", "{port}", "--children", "1"), 2),
                Arguments.of("ScrubsEnvironment", listener(ScrubsEnvironment.class, "--port", "{port}"), 2));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void everyTreeShapeStartsRestartsAndStopsCompletely(String shape, Profile profile, int members) throws Exception {
        int port = Fixture.freePort();
        Duration grace = shape.equals("IgnoresSigterm") ? Duration.ofMillis(300) : GRACE;
        ServerHandle server = manager.start(new ServerSpec("fixture", profile, "127.0.0.1", port, grace));
        Lease first = server.lease();
        assertThat(PortListeners.isListening(port)).isTrue();
        awaitMembers(first, members);
        if (shape.equals("DaemonizesTwice")) {
            // Its root exits 0 while its worker keeps listening: still managed, still alive.
            assertThat(Poll.until(() -> server.connection().daemonized(), UP)).as("shim reports daemonized").isTrue();
            assertThat(first.server().isAlive()).isFalse();
            assertThat(server.isAlive()).isTrue();
            assertThat(server.exitCode()).isEmpty();
            assertThat(PortListeners.isListening(port)).isTrue();
        }

        server.restart();
        Lease second = server.lease();
        assertThat(second.id()).isNotEqualTo(first.id());
        assertThat(second.port()).isEqualTo(port);
        assertThat(members(first)).as("old tree after restart").isEmpty();
        assertThat(first.shim().isAlive()).isFalse();
        assertThat(home.leases().resolve(first.id() + ".json")).doesNotExist();
        assertThat(PortListeners.isListening(port)).isTrue();
        awaitMembers(second, members);

        server.stop();
        assertGone(home, second);
        assertThat(server.isAlive()).isFalse();
        assertThat(leaseFiles(home)).isEmpty();
    }

    // ---- the port rules ----

    @Test
    void aForeignListenerIsNamedAndLeftAlone() throws Exception {
        int port = Fixture.freePort();
        Spawned foreign = Spawner.spawn(Spawner.Spec.of(Fixture.command(Worker.class, "--port", String.valueOf(port)),
                dir.resolve("foreign.log"), null));
        try {
            Fixture.awaitListening(port, UP);
            ForeignPortException e = catchThrowableOfType(ForeignPortException.class,
                    () -> manager.start(spec(healthServer(), port)));
            assertThat(e).as("start refuses").isNotNull();
            assertThat(e.port()).isEqualTo(port);
            assertThat(e.holder().identity().pid()).isEqualTo(foreign.pid());
            assertThat(e.getMessage()).contains("pid " + foreign.pid()).contains("--port auto").doesNotContain("already running");
            assertThat(e.holder().command()).contains(Worker.class.getName());
            assertThat(events.lines).as("nothing was started").isEmpty();
            assertThat(leaseFiles(home)).isEmpty();
            assertThat(foreign.process().isAlive()).isTrue();
            assertThat(PortListeners.holderPids(port)).containsExactly(foreign.pid());
        } finally {
            TreeStopper.stop(new ProcessTree(foreign.membership()), GRACE);
        }
    }

    @Test
    void twoStartsRacingForOnePortMakeExactlyOneServer() throws Exception {
        int port = Fixture.freePort();
        // Loads for a while, so the second start finds the first one still starting.
        ServerSpec spec = spec(healthServer("--ready-after-ms", "700"), port);
        Recorder otherEvents = new Recorder();
        ServerManager other = manager(otherEvents);
        CyclicBarrier barrier = new CyclicBarrier(2);
        AtomicBoolean racing = new AtomicBoolean(true);
        List<Throwable> torn = new CopyOnWriteArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(3);
        try {
            // Meanwhile every lease written must always read whole.
            Future<?> reader = pool.submit(() -> {
                LeaseStore store = new LeaseStore(home);
                while (racing.get()) {
                    if (!store.damaged().isEmpty()) {
                        torn.add(new AssertionError("damaged: " + store.damaged()));
                    }
                    Poll.until(() -> !racing.get(), Duration.ofMillis(1));   // look again in a millisecond
                }
            });
            Future<ServerHandle> a = pool.submit(() -> {
                barrier.await();
                return manager.start(spec);
            });
            Future<ServerHandle> b = pool.submit(() -> {
                barrier.await();
                return other.start(spec);
            });
            ServerHandle ha = a.get(60, TimeUnit.SECONDS);
            ServerHandle hb = b.get(60, TimeUnit.SECONDS);
            racing.set(false);
            reader.get(10, TimeUnit.SECONDS);

            assertThat(torn).isEmpty();
            ServerHandle owner = ha.owned() ? ha : hb;
            ServerHandle user = ha.owned() ? hb : ha;
            assertThat(owner.owned()).isTrue();
            assertThat(user.owned()).as("exactly one start owns the server").isFalse();
            assertThat(user.lease().id()).isEqualTo(owner.lease().id());
            Recorder ownerEvents = owner == ha ? events : otherEvents;
            Recorder userEvents = owner == ha ? otherEvents : events;
            assertThat(ownerEvents.of("starting")).hasSize(1);
            assertThat(userEvents.of("starting")).isEmpty();
            assertThat(userEvents.of("reusing")).containsExactly("reusing " + owner.lease().id() + " " + owner.baseUrl());
            assertThat(leaseFiles(home)).hasSize(1);
            assertThat(PortListeners.holderPids(port)).hasSize(1);
            long healthServers = ProcFs.pids().stream()
                    .filter(pid -> ProcFs.environValue(pid, TetherHome.ENV).filter(h -> h.equals(home.root().toString())).isPresent())
                    .filter(pid -> ProcFs.commandLine(pid).contains(HealthServer.class.getName()))
                    .filter(pid -> ProcFs.stat(pid).map(s -> !s.isDead()).orElse(false))
                    .count();
            assertThat(healthServers).as("HealthServer processes").isEqualTo(1);

            // The user of a server it does not own never stops it.
            user.close();
            assertThat(user.isAlive()).isTrue();
            assertThat(status(owner.baseUrl() + "/health")).isEqualTo(200);
            assertThatThrownBy(user::restart).isInstanceOf(IllegalStateException.class).hasMessageContaining("another tether");
            Lease lease = owner.lease();
            owner.close();
            assertGone(home, lease);
            assertThat(user.isAlive()).isFalse();
        } finally {
            racing.set(false);
            pool.shutdownNow();
        }
    }

    @Test
    void anotherModelOnATakenPortIsRefusedAndTheRunningServerKept() throws Exception {
        int port = Fixture.freePort();
        ServerHandle running = manager.start(spec(healthServer(), port));
        ServerManager other = manager(ServerEvents.NONE);
        ServerSpec another = new ServerSpec("another-model", healthServer(), "127.0.0.1", port, GRACE);
        assertThatThrownBy(() -> other.start(another)).isInstanceOf(PortInUseException.class)
                .hasMessageContaining("already running").hasMessageContaining("tether pid " + ProcessHandle.current().pid())
                .hasMessageContaining("--port auto");
        assertThat(running.isAlive()).isTrue();
        assertThat(status(running.baseUrl() + "/health")).isEqualTo(200);
        assertThat(leaseFiles(home)).hasSize(1);
    }

    @Test
    void aLiveOwnersServerThatStopsAnsweringIsNotWaitedOnForever() throws Exception {
        int port = Fixture.freePort();
        ServerHandle crashing = manager.start(spec(healthServer("--crash-after-ms", "1000"), port));
        assertThat(crashing.onExit().get(UP.toSeconds(), TimeUnit.SECONDS)).isEqualTo(1);
        // Its owner (this JVM) lives and has not stopped it yet: the lease still says READY.
        assertThat(manager.lease(crashing.lease().id())).map(Lease::state).contains(Lease.State.READY);

        Recorder otherEvents = new Recorder();
        ServerManager other = manager(otherEvents);
        ServerSpec same = spec(healthServer("--crash-after-ms", "1000").withStartupTimeout(Duration.ofSeconds(2)), port);
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try {
            Future<ServerHandle> attempt = pool.submit(() -> other.start(same));
            Throwable failure = catchThrowableOfType(java.util.concurrent.ExecutionException.class,
                    () -> attempt.get(20, TimeUnit.SECONDS));
            assertThat(failure).as("the start gives up by its deadline").isNotNull();
            assertThat(failure.getCause()).isInstanceOf(ServerStartException.class);
            assertThat(otherEvents.of("waiting").size()).as("waiting lines printed").isLessThanOrEqualTo(3);
        } finally {
            pool.shutdownNow();
        }
        assertThat(otherEvents.of("starting")).isEmpty();
        Lease lease = crashing.lease();
        crashing.stop();
        assertGone(home, lease);
    }

    @Test
    void portAutoGivesEachServerItsOwnFreePort() throws Exception {
        ServerHandle one = manager.start(spec(healthServer(), ServerSpec.AUTO_PORT));
        ServerHandle two = manager.start(spec(healthServer(), ServerSpec.AUTO_PORT));
        assertThat(one.port()).isPositive().isNotEqualTo(two.port());
        assertThat(status(one.baseUrl() + "/health")).isEqualTo(200);
        assertThat(status(two.baseUrl() + "/health")).isEqualTo(200);
        assertThat(one.lease().argv()).contains(String.valueOf(one.port()));
        Lease a = one.lease();
        Lease b = two.lease();
        manager.close();
        assertGone(home, a);
        assertGone(home, b);
        assertThat(leaseFiles(home)).isEmpty();
        assertThat(Set.of(a.port(), b.port())).hasSize(2);
    }

    /** What a tether killed between writing its lease and starting the shim leaves (kill -9 suite). */
    @Test
    void aLeaseWithNothingAliveIsRemovedByTheNextStartWhateverItsPort() throws Exception {
        ProcessIdentity dead = new ProcessIdentity(4_000_001, 1, "no-such-boot", 1000);
        Lease stale = new Lease("tstale", "fixture", "command", List.of("srv", "--port", "1"), "127.0.0.1", 1, "/health",
                null, 0, dead, null, Set.of(), home.logs().resolve("tstale.log").toString(), java.time.Instant.now(), 10_000,
                Lease.State.STARTING);
        new dev.tether.server.LeaseStore(home).write(stale);
        assertThat(leaseFiles(home)).hasSize(1);
        ServerHandle server = manager.start(spec(healthServer(), ServerSpec.AUTO_PORT));
        assertThat(new dev.tether.server.LeaseStore(home).list()).extracting(Lease::id).containsExactly(server.lease().id());
        manager.close();
        assertThat(leaseFiles(home)).isEmpty();
    }
}
