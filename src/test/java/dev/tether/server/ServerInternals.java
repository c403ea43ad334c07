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

    /** The shim's JVM flags, without the cache. */
    public static java.util.List<String> shimJvmFlags() {
        return ServerManager.SHIM_JVM_FLAGS;
    }
}
