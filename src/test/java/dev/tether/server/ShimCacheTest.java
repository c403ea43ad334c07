package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;

import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shim's AOT cache: keyed so nothing stale is used, trained once, and never in the way of a
 * start — several shims at once share it, and a missing, truncated or corrupt file only costs its
 * speed. The shims here run from a jar made of {@code target/classes} (the JVM caches classes from
 * jars only), as they do when tether runs from {@code target/tether.jar}.
 */
class ShimCacheTest {
    private static final List<String> FLAGS = ServerManager.SHIM_JVM_FLAGS;

    @TempDir
    static Path shared;

    private static String jarClasspath;

    @TempDir
    Path dir;

    /** tether's classes as a jar, then its dependencies: the layout of an installed tether. */
    @BeforeAll
    static void makeJar() throws IOException, URISyntaxException {
        jarClasspath = ServerInternals.installedClasspath(shared, JavaCommand.classpath());
    }

    private ShimCache cache(Path home) {
        return new ShimCache(home.resolve("cache"), FLAGS, jarClasspath);
    }

    /** Starts a shim (with the cache's flags) managing {@code sleep 60}; returns once it reported "started". */
    private record RunningShim(Spawned process, ShimConnection connection) {}

    private static RunningShim startShim(Path home, ShimCache cache) throws Exception {
        TetherHome th = new TetherHome(home).ensure();
        String id = "cache-test-" + Long.toHexString(System.nanoTime());
        new LeaseStore(th).write(new Lease(id, null, "test", List.of("sleep", "60"), "127.0.0.1", 0, null, null, 0,
                dev.tether.proc.ProcessIdentity.current(), null, Set.of(), th.logs().resolve(id + ".log").toString(),
                Instant.now(), 1000, Lease.State.STARTING));
        List<String> flags = new ArrayList<>(FLAGS);
        flags.addAll(cache.flags());
        long t0 = System.nanoTime();
        Spawned shim = Spawner.spawn(new Spawner.Spec(JavaCommand.withClasspath(flags, jarClasspath,
                Shim.class.getName(), home.toString(), id), Map.of(TetherHome.ENV, home.toString()), null,
                th.logs().resolve(id + ".shim"), id, true, Spawner.Output.PIPE_STDOUT));
        ShimConnection connection = new ShimConnection(shim, t0);
        connection.started.get(60, TimeUnit.SECONDS);
        return new RunningShim(shim, connection);
    }

    private static boolean mapsFile(Spawned shim, Path file) throws IOException {
        return Files.readString(Path.of("/proc/" + shim.pid() + "/maps")).contains(file.toString());
    }

    private static void stop(RunningShim shim) {
        assertThat(shim.connection().stop(Duration.ofSeconds(30))).isNotNull();
    }

    @Test
    void aClassPathWithADirectoryHasNoCache() {
        ShimCache cache = new ShimCache(dir, FLAGS, JavaCommand.classpath());
        assertThat(cache.file()).isNull();
        assertThat(cache.whyDisabled()).contains("directory");
        assertThat(ShimCache.besideJar(JavaCommand.classpath())).as("tests run from target/test-classes").isNull();
        assertThat(cache.flags()).isEmpty();
    }

    @Test
    void theSwitchTurnsItOff() {
        System.setProperty(ShimCache.SWITCH_PROPERTY, "false");
        try {
            assertThat(cache(dir).file()).isNull();
            assertThat(cache(dir).whyDisabled()).contains("turned off");
        } finally {
            System.clearProperty(ShimCache.SWITCH_PROPERTY);
        }
    }

    @Test
    void anotherBuildOrOtherFlagsGetAnotherFile() throws IOException {
        Path before = cache(dir).file();
        assertThat(before.getFileName().toString()).startsWith("shim-dev-jdk" + Runtime.version().feature()).endsWith(".aot");
        assertThat(cache(dir).file()).isEqualTo(before);
        List<String> otherFlags = new ArrayList<>(FLAGS);
        otherFlags.add("-Xmx128m");
        assertThat(new ShimCache(dir.resolve("cache"), otherFlags, jarClasspath).file()).isNotEqualTo(before);
        Path jar = Path.of(jarClasspath.split(":")[0]);
        FileTime was = Files.getLastModifiedTime(jar);
        try {
            Files.setLastModifiedTime(jar, FileTime.from(was.toInstant().plusSeconds(60)));   // "rebuilt"
            assertThat(cache(dir).file()).isNotEqualTo(before);
        } finally {
            Files.setLastModifiedTime(jar, was);
        }
    }

    @Test
    void trainedOnceThenSeveralShimsAtOnceUseItAndADamagedFileNeverBreaksAStart() throws Exception {
        Path home = dir.resolve("home");
        ShimCache cache = cache(home);
        assertThat(cache.flags()).isEmpty();
        assertThat(cache.train()).startsWith("created");
        assertThat(cache.ready()).isTrue();
        assertThat(cache.flags()).contains("-XX:AOTCache=" + cache.file(), "-XX:+VerifySharedSpaces");
        try (Stream<Path> left = Files.list(cache.file().getParent())) {
            assertThat(left.map(p -> p.getFileName().toString()))
                    .allMatch(n -> n.equals(cache.file().getFileName().toString()) || n.endsWith(".lock"));
        }
        assertThat(cache.train()).startsWith("already there");

        // Four shims at once, all mapping the one cache.
        assertShimsStart(home, cache, 4, true);

        // Truncated (as a full disk would leave a file written in place; ours never is).
        long size = Files.size(cache.file());
        try (RandomAccessFile f = new RandomAccessFile(cache.file().toFile(), "rw")) {
            f.setLength(size / 2);
        }
        assertShimsStart(home, cache, 2, false);

        // Empty.
        try (RandomAccessFile f = new RandomAccessFile(cache.file().toFile(), "rw")) {
            f.setLength(0);
        }
        assertShimsStart(home, cache, 1, false);

        // Whole size but damaged inside: without the checksum check this crashes the JVM.
        Files.delete(cache.file());
        assertThat(cache.train()).startsWith("created");
        try (RandomAccessFile f = new RandomAccessFile(cache.file().toFile(), "rw")) {
            byte[] junk = new byte[64];
            Arrays.fill(junk, (byte) 0x5a);
            for (long at = 64 * 1024; at < f.length(); at += 256 * 1024) {
                f.seek(at);
                f.write(junk);
            }
        }
        assertShimsStart(home, cache, 2, false);
    }

    private static void assertShimsStart(Path home, ShimCache cache, int count, boolean expectMapped) throws Exception {
        List<Callable<RunningShim>> starts = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            starts.add(() -> startShim(home, cache));
        }
        List<RunningShim> running = new ArrayList<>();
        try (ExecutorService pool = Executors.newFixedThreadPool(count)) {
            Exception failure = null;
            for (Future<RunningShim> f : pool.invokeAll(starts)) {
                try {
                    running.add(f.get());
                } catch (Exception e) {
                    failure = e;
                }
            }
            for (RunningShim shim : running) {
                assertThat(mapsFile(shim.process(), cache.file())).as("shim %d maps the cache", shim.process().pid())
                        .isEqualTo(expectMapped);
            }
            if (failure != null) {
                throw failure;
            }
            assertThat(running).hasSize(count);
        } finally {
            running.forEach(ShimCacheTest::stop);
        }
    }

    @Test
    void twoTrainersAtOnceMakeOneCacheAndItReplacesThoseOfOtherBuilds() throws Exception {
        Path home = dir.resolve("home");
        Path cacheDir = Files.createDirectories(home.resolve("cache"));
        Path otherBuild = Files.writeString(cacheDir.resolve("shim-0.0.9-jdk25.0.1-0123456789ab.aot"), "old");
        Path otherLock = Files.writeString(cacheDir.resolve("shim-0.0.9-jdk25.0.1-0123456789ab.aot.lock"), "");
        Path unrelated = Files.writeString(cacheDir.resolve("notes.txt"), "kept");
        try (ExecutorService pool = Executors.newFixedThreadPool(2)) {
            List<Future<String>> results = pool.invokeAll(List.of(() -> cache(home).train(), () -> cache(home).train()));
            List<String> said = new ArrayList<>();
            for (Future<String> r : results) {
                said.add(r.get());
            }
            assertThat(said).filteredOn(s -> s.startsWith("created")).hasSize(1);
            assertThat(said).filteredOn(s -> s.startsWith("another tether is creating") || s.startsWith("already there"))
                    .hasSize(1);
        }
        assertThat(cache(home).ready()).isTrue();
        assertThat(otherBuild).doesNotExist();
        assertThat(otherLock).doesNotExist();
        assertThat(unrelated).exists();
    }

    @Test
    void aManagerNeverCreatesTheCacheButUsesTheOneBesideTheJar() throws Exception {
        Path home = dir.resolve("home");
        String before = System.getProperty("tether.classpath");
        System.setProperty("tether.classpath", jarClasspath);
        ShimCache built = new ShimCache(ShimCache.besideJar(jarClasspath), FLAGS, jarClasspath);
        try (ServerManager manager = new ServerManager(new TetherHome(home), ServerEvents.NONE)) {
            assertThat(manager.shimCache().file()).isEqualTo(built.file());
            Files.deleteIfExists(built.file());
            Profile profile = ServerManagerTest.healthServer();
            // No cache: the shim starts without one, and nothing is trained at run time (issue 10, item 8).
            try (ServerHandle first = manager.start(ServerManagerTest.spec(profile, ServerSpec.AUTO_PORT))) {
                assertThat(mapsFile(first.connection().shim(), built.file())).isFalse();
            }
            assertThat(built.file()).doesNotExist();
            assertThat(home.resolve("cache")).doesNotExist();
            try (Stream<Path> files = Files.list(built.file().getParent())) {
                assertThat(files.map(p -> p.getFileName().toString())).noneMatch(n -> n.startsWith("train-") || n.endsWith(".tmp"));
            }

            // What the launcher's build step does; the next shim maps it.
            assertThat(built.train()).startsWith("created");
            try (ServerHandle second = manager.start(ServerManagerTest.spec(profile, ServerSpec.AUTO_PORT))) {
                assertThat(mapsFile(second.connection().shim(), built.file())).as("the next shim maps it").isTrue();
            }
        } finally {
            System.setProperty("tether.classpath", before);
            Files.deleteIfExists(built.file());
        }
    }
}
