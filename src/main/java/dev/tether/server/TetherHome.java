package dev.tether.server;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;

/**
 * tether's state directory (DESIGN 1): {@code $TETHER_HOME}, else {@code $XDG_STATE_HOME/tether},
 * else {@code ~/.local/state/tether}; mode 0700 because leases name processes that may be signalled.
 */
public record TetherHome(Path root) {
    /** Also put into every server's environment, so any tether can find the lease a process belongs to. */
    public static final String ENV = "TETHER_HOME";

    public static TetherHome fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    static TetherHome fromEnvironment(Map<String, String> env) {
        String explicit = env.get(ENV);
        if (explicit != null && !explicit.isBlank()) {
            return new TetherHome(Path.of(explicit).toAbsolutePath());
        }
        String xdg = env.get("XDG_STATE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return new TetherHome(Path.of(xdg, "tether").toAbsolutePath());
        }
        return new TetherHome(Path.of(System.getProperty("user.home"), ".local", "state", "tether"));
    }

    public Path leases() {
        return root.resolve("leases");
    }

    public Path logs() {
        return root.resolve("logs");
    }

    public Path models() {
        return root.resolve("models");
    }

    /** Creates the directory tree with mode 0700 if needed; returns this. */
    public TetherHome ensure() {
        try {
            for (Path dir : new Path[] {root, leases(), logs(), models()}) {
                if (!Files.isDirectory(dir)) {
                    Files.createDirectories(dir);
                    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
                }
            }
            return this;
        } catch (IOException e) {
            throw new StateException("cannot create tether's state directory " + root, root, e);
        }
    }
}
