package dev.tether.server;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/** Package-private measurements of the server layer, for the benchmarks in {@code dev.tether.bench}. */
public final class ServerInternals {
    private ServerInternals() {}

    /** From spawning the server's shim to its "started" report, for a server this process started. */
    public static Optional<Duration> shimStartup(ServerHandle handle) {
        ShimConnection c = handle.connection();
        return c == null ? Optional.empty() : c.startup();
    }

    /** The manager's shim AOT cache file, or null when its class path cannot have one. */
    public static Path shimCacheFile(ServerManager manager) {
        return manager.shimCache().file();
    }

    public static String shimCacheDisabledWhy(ServerManager manager) {
        return manager.shimCache().whyDisabled();
    }

    /** Creates the shim's AOT cache now (what a manager otherwise does in the background); says what happened. */
    public static String trainShimCache(ServerManager manager) throws Exception {
        return manager.shimCache().train();
    }

    /**
     * tether's classes packed into one jar in {@code dir}, followed by the dependency jars of
     * {@code devClasspath}: the layout of an installed tether (the shim's AOT cache needs jars).
     */
    public static String installedClasspath(Path dir, String devClasspath) throws java.io.IOException {
        Path classes;
        try {
            classes = Path.of(ServerManager.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        Path jar = dir.resolve("tether-classes.jar");
        try (var out = new java.util.jar.JarOutputStream(java.nio.file.Files.newOutputStream(jar));
             var files = java.nio.file.Files.walk(classes)) {
            for (Path f : files.filter(java.nio.file.Files::isRegularFile).sorted().toList()) {
                out.putNextEntry(new java.util.jar.JarEntry(classes.relativize(f).toString().replace('\\', '/')));
                java.nio.file.Files.copy(f, out);
                out.closeEntry();
            }
        }
        java.util.List<String> cp = new java.util.ArrayList<>(java.util.List.of(jar.toString()));
        java.util.Arrays.stream(devClasspath.split(java.io.File.pathSeparator)).filter(e -> e.endsWith(".jar")).forEach(cp::add);
        return String.join(java.io.File.pathSeparator, cp);
    }

    /** The shim's JVM flags, without the cache. */
    public static java.util.List<String> shimJvmFlags() {
        return ServerManager.SHIM_JVM_FLAGS;
    }
}
