package dev.tether.server;

import java.time.Duration;
import java.util.Map;

/**
 * How a model becomes a running server (DESIGN 4): an argv template, extra environment, the health
 * path that says "ready" (null: ready as soon as the port listens), the startup deadline, and how
 * long a run waits with no answer before it checks whether the server hangs (null: the run's default).
 */
public record Profile(String name, ArgvTemplate command, String healthPath, Duration startupTimeout,
                      Map<String, String> env, Duration hangTimeout) {
    public static final Duration DEFAULT_STARTUP = Duration.ofSeconds(600);

    public Profile {
        env = env == null ? Map.of() : Map.copyOf(env);
        startupTimeout = startupTimeout == null ? DEFAULT_STARTUP : startupTimeout;
        if (healthPath != null && !healthPath.startsWith("/")) {
            healthPath = "/" + healthPath;
        }
    }

    public Profile(String name, ArgvTemplate command, String healthPath, Duration startupTimeout, Map<String, String> env) {
        this(name, command, healthPath, startupTimeout, env, null);
    }

    public Profile withHealthPath(String path) {
        return new Profile(name, command, path, startupTimeout, env, hangTimeout);
    }

    public Profile withCommand(ArgvTemplate newCommand) {
        return new Profile(name, newCommand, healthPath, startupTimeout, env, hangTimeout);
    }

    public Profile withStartupTimeout(Duration timeout) {
        return new Profile(name, command, healthPath, timeout, env, hangTimeout);
    }
}
