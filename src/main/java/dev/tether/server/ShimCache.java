package dev.tether.server;

import dev.tether.proc.Membership;
import dev.tether.proc.ProcessIdentity;
import dev.tether.proc.ProcessTree;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawned;
import dev.tether.proc.Spawner;
import dev.tether.proc.TreeStopper;
import java.io.File;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.jar.Attributes;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * The shim's AOT cache (JEP 483, created in one training run as JEP 514 allows), which halves the
 * shim's start (DESIGN 3.5: "the shim's cost ... kept low"; figures in BENCHMARKS.md).
 *
 * <p>The cache is created at build time, never while tether runs: the launcher ({@code ./tether}) runs
 * {@link #main} right after it built {@code target/tether.jar}, under its build lock (issue 10, item 8: a
 * training in the background at run time outlived a killed tether and left 26 MB files behind). At run
 * time tether only looks the file up; without one, shims simply start without it.
 *
 * <p>The cache is {@code shim-<version>-jdk<version>-<key>.aot} beside tether's jar, where the key
 * hashes the JDK (home and build), tether's version, the shim's JVM flags and its class path with every
 * jar's size and modification time: a new tether build, another JDK or other flags never meet a stale
 * cache, they make their own. Safety:
 * <ul>
 *   <li>A cache is only ever published whole: the training JVM writes a private temporary file, which is
 *       checked by a JVM that must load it ({@code -XX:AOTMode=on}) and then renamed into place. Shims
 *       that start meanwhile use the old name's file or none; several shims share one file read-only.</li>
 *   <li>Each shim starts with {@code -XX:+VerifySharedSpaces}: the JVM checks the file's checksums and,
 *       like for a missing or truncated file, runs without it when they do not match (a corrupt file
 *       would otherwise crash it). {@code -XX:AOTMode} stays {@code auto}: an unusable cache never stops
 *       a start.</li>
 *   <li>One training per cache file: an exclusive lock on {@code <file>.lock} across processes (the lock
 *       goes with its holder, even killed), plus a set inside this JVM. It runs in the background after
 *       a server became ready (about 2 s of CPU, once); a failed one leaves {@code <file>.failed} saying
 *       why and is not repeated for that file (delete it to try again). Installing a cache removes
 *       those of other builds and JDKs.</li>
 * </ul>
 * The cache needs every class path entry to be a jar (the JVM does not archive classes from a
 * directory): it is used when tether runs from {@code target/tether.jar}, not from
 * {@code target/classes} (the tests). {@code -Dtether.shim.aot=false} turns it off.
 */
final class ShimCache {
    static final String SWITCH_PROPERTY = "tether.shim.aot";
    private static final Duration TRAINING_DEADLINE = Duration.ofSeconds(120);

    private final Path dir;
    private final List<String> jvmFlags;
    private final String classpath;
    private Path file;
    private String disabled;
    private boolean resolved;

    /**
     * @param dir       where the cache lives (null: nowhere, no cache)
     * @param jvmFlags  the shim's own JVM flags (the training run uses the same)
     * @param classpath the shim's class path, as {@link JavaCommand} passes it
     */
    ShimCache(Path dir, List<String> jvmFlags, String classpath) {
        this.dir = dir;
        this.jvmFlags = List.copyOf(jvmFlags);
        this.classpath = classpath;
    }

    /** The cache of the shims of this tether: beside the jar the class path starts with (none for classes in a directory). */
    static ShimCache forThisTether() {
        return new ShimCache(besideJar(JavaCommand.classpath()), ServerManager.SHIM_JVM_FLAGS, JavaCommand.classpath());
    }

    static Path besideJar(String classpath) {
        String first = classpath.split(File.pathSeparator)[0];
        Path jar = Path.of(first).toAbsolutePath();
        return first.endsWith(".jar") && Files.isRegularFile(jar) ? jar.getParent() : null;
    }

    /**
     * The launcher's build step: {@code java -cp target/tether.jar dev.tether.server.ShimCache} creates the
     * cache for this build and JDK if it is missing. Says nothing unless it fails; exits 0 either way (a
     * missing cache only makes shims start slower).
     */
    public static void main(String[] args) throws Exception {
        ShimCache cache = forThisTether();
        String outcome = cache.train();
        if (outcome.startsWith("no cache")) {
            if (cache.file() != null) {
                Files.writeString(cache.failedMarker(), outcome + System.lineSeparator());
            }
            System.err.println("tether: the shim's start cache was not created (" + outcome + "); servers start without it");
        }
    }

    /** Names the cache file on first use (it stats the class path: not worth doing for `tether ps`). */
    private synchronized void resolve() {
        if (resolved) {
            return;
        }
        resolved = true;
        if ("false".equalsIgnoreCase(System.getProperty(SWITCH_PROPERTY, "true"))) {
            disabled = "turned off (-D" + SWITCH_PROPERTY + "=false)";
            return;
        }
        if (dir == null) {
            disabled = "the class path does not start with tether's jar (" + classpath.split(File.pathSeparator)[0]
                    + "): the JVM caches classes from jars only";
            return;
        }
        try {
            file = dir.resolve("shim-" + version() + "-jdk" + Runtime.version().feature() + "."
                    + Runtime.version().interim() + "." + Runtime.version().update() + "-" + key() + ".aot");
        } catch (NotCacheable e) {
            disabled = e.getMessage();
        }
    }

    /** The cache file, or null when there is none for this class path (see {@link #whyDisabled}). */
    Path file() {
        resolve();
        return file;
    }

    String whyDisabled() {
        resolve();
        return disabled;
    }

    boolean ready() {
        Path f = file();
        return f != null && Files.isRegularFile(f);
    }

    /** What to add to a shim's JVM flags: the cache and its check when it exists, else nothing. */
    List<String> flags() {
        return ready() ? List.of("-XX:AOTCache=" + file, "-XX:+VerifySharedSpaces") : List.of();
    }

    /** Where a failed training says why; while it exists, this cache file is not trained for again. */
    private Path failedMarker() {
        return Path.of(file + ".failed");
    }

    /**
     * Runs a shim through one server start and stop with {@code -XX:AOTCacheOutput}, checks the cache it
     * leaves and installs it. Returns a line saying what happened.
     */
    String train() throws IOException, InterruptedException {
        if (file() == null) {
            return "no cache: " + disabled;
        }
        ensureDir();
        try (FileChannel channel = FileChannel.open(dir.resolve(file.getFileName() + ".lock"),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock lock = tryLock(channel)) {
            if (lock == null) {
                return "another tether is creating " + file.getFileName();
            }
            if (ready()) {
                return "already there: " + file.getFileName();
            }
            removeLeftovers();
            Path work = Files.createTempDirectory(dir, "train-");
            Path output = dir.resolve(file.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
            try {
                String problem = runTrainingShim(work, output);
                if (problem == null) {
                    problem = check(output);
                }
                if (problem != null) {
                    return "no cache: " + problem;
                }
                Files.move(output, file, StandardCopyOption.ATOMIC_MOVE);
                removeOtherCaches();
                return "created " + file.getFileName() + " (" + Files.size(file) / 1024 + " KiB)";
            } finally {
                Files.deleteIfExists(output);
                Files.deleteIfExists(Path.of(output + ".config"));
                deleteTree(work);
            }
        }
    }

    private static FileLock tryLock(FileChannel channel) throws IOException {
        try {
            return channel.tryLock();
        } catch (OverlappingFileLockException e) {
            return null;   // another ShimCache in this JVM holds it
        }
    }

    /** The training run: a real shim, in a throwaway home, managing {@code true} from start to stop. */
    private String runTrainingShim(Path work, Path output) throws IOException, InterruptedException {
        TetherHome home = new TetherHome(work).ensure();
        String id = "aot-" + Long.toHexString(System.nanoTime());
        new LeaseStore(home).write(new Lease(id, null, "aot-training", List.of("true"), "127.0.0.1", 0, null, null, 0,
                ProcessIdentity.current(), null, Set.of(), home.logs().resolve(id + ".log").toString(), Instant.now(),
                1000, Lease.State.STARTING));
        List<String> flags = new ArrayList<>(jvmFlags);
        flags.add("-XX:AOTCacheOutput=" + output);
        Spawned shim;
        try {
            shim = Spawner.spawn(new Spawner.Spec(JavaCommand.withClasspath(flags, classpath, Shim.class.getName(),
                    work.toString(), id), Map.of(TetherHome.ENV, work.toString()), null, work.resolve("shim.log"), id,
                    true, Spawner.Output.PIPE_STDOUT));
        } catch (SpawnException e) {
            return e.getMessage();
        }
        try {
            ShimConnection connection = new ShimConnection(shim, System.nanoTime());
            try {
                connection.started.get(TRAINING_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
                connection.ended.get(TRAINING_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);   // "exited 0" of `true`
            } catch (ExecutionException | TimeoutException e) {
                return "the training shim did not run: " + e;
            }
            connection.stop(TRAINING_DEADLINE);   // its JVM writes the cache as it exits
            if (shim.process().isAlive()) {
                return "the training shim did not exit in time";
            }
            if (shim.process().exitValue() != 0 || !Files.isRegularFile(output)) {
                return "the training shim exited with " + shim.process().exitValue() + " and no cache (see "
                        + work.resolve("shim.log") + ")";
            }
            return null;
        } finally {
            if (shim.process().isAlive() || new ProcessTree(Membership.of(shim)).members().size() > 0) {
                TreeStopper.stop(new ProcessTree(Membership.of(shim)), Duration.ofMillis(200));
            }
        }
    }

    /** A JVM with the shim's flags must load the new cache, checksums and all; null when it does. */
    private String check(Path output) throws IOException, InterruptedException {
        List<String> flags = new ArrayList<>(jvmFlags);
        flags.addAll(List.of("-XX:AOTCache=" + output, "-XX:AOTMode=on", "-XX:+VerifySharedSpaces"));
        List<String> command = JavaCommand.jvm(flags, classpath);
        command.add("-version");
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "the new cache could not be checked in time";
        }
        return p.exitValue() == 0 ? null : "a JVM could not load the new cache (exit " + p.exitValue() + ")";
    }

    private void ensureDir() throws IOException {
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        }
    }

    /** What earlier trainings that died left (under the lock, so none of them is still ours to finish). */
    private void removeLeftovers() throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                String n = p.getFileName().toString();
                if (n.startsWith(file.getFileName() + ".") && (n.endsWith(".tmp") || n.endsWith(".tmp.config"))) {
                    Files.deleteIfExists(p);
                } else if (n.startsWith("train-") && Files.isDirectory(p)
                        && Files.getLastModifiedTime(p).toInstant().isBefore(Instant.now().minus(Duration.ofHours(1)))) {
                    deleteTree(p);   // an hour old: no live training of any version uses it
                }
            }
        }
    }

    /**
     * Removes the caches of other builds and JDKs (25 MiB each; every rebuild of tether makes a new one).
     * A shim that runs with one keeps its mapping; a tether of that other build that is still running
     * starts its next shims without a cache and trains its own again once.
     */
    private void removeOtherCaches() throws IOException {
        String mine = file.getFileName().toString();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, "shim-*.aot*")) {
            for (Path p : entries) {
                String n = p.getFileName().toString();
                if (!n.startsWith(mine) && (n.endsWith(".aot") || n.endsWith(".aot.lock") || n.endsWith(".aot.failed"))) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> all = Files.walk(root)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static String version() {
        String v = Shim.class.getPackage().getImplementationVersion();
        return v == null ? "dev" : v.replaceAll("[^A-Za-z0-9._-]", "_");
    }

    private static final class NotCacheable extends Exception {
        NotCacheable(String message) {
            super(message, null, false, false);
        }
    }

    private String key() throws NotCacheable {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (String s : List.of(System.getProperty("java.home"), System.getProperty("java.vm.version"),
                    Runtime.version().toString(), version(), String.join(" ", jvmFlags), classpath)) {
                sha.update(s.getBytes(StandardCharsets.UTF_8));
                sha.update((byte) 0);
            }
            for (Path entry : entries()) {
                sha.update((entry + "|" + Files.size(entry) + "|" + Files.getLastModifiedTime(entry).toMillis())
                        .getBytes(StandardCharsets.UTF_8));
                sha.update((byte) 0);
            }
            return HexFormat.of().formatHex(sha.digest(), 0, 6);
        } catch (NoSuchAlgorithmException | IOException e) {
            throw new NotCacheable("cannot key the cache: " + e.getMessage());
        }
    }

    /** The class path's jars and those their manifests add (Class-Path); a directory makes it uncacheable. */
    private List<Path> entries() throws NotCacheable, IOException {
        List<Path> jars = new ArrayList<>();
        for (String s : classpath.split(File.pathSeparator)) {
            if (s.isEmpty()) {
                continue;
            }
            Path entry = Path.of(s).toAbsolutePath();
            if (Files.isDirectory(entry)) {
                throw new NotCacheable("the class path has a directory (" + entry + "): the JVM caches classes from jars only");
            }
            if (!Files.isRegularFile(entry)) {
                throw new NotCacheable("class path entry " + entry + " does not exist");
            }
            jars.add(entry);
            try (JarFile jar = new JarFile(entry.toFile())) {
                var manifest = jar.getManifest();
                String more = manifest == null ? null : manifest.getMainAttributes().getValue(Attributes.Name.CLASS_PATH);
                if (more != null) {
                    for (String rel : more.trim().split("\\s+")) {
                        Path dep = entry.getParent().resolve(rel).normalize();
                        if (Files.isRegularFile(dep)) {
                            jars.add(dep);
                        }
                    }
                }
            }
        }
        return jars;
    }
}
