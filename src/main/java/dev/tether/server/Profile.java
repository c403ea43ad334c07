package dev.tether.server;

import java.time.Duration;
import java.util.Map;

/**
 * How a model becomes a running server (DESIGN 4): an argv template, extra environment, the health
 * path that says "ready" (null: ready as soon as the port listens), the startup deadline, and how
 * long a run waits with no answer before it checks whether the server hangs (null: the run's default),
 * and a line its log must show before it counts as ready ({@code readyLog}, a regular expression; null: none).
 */
public record Profile(String name, ArgvTemplate command, String healthPath, Duration startupTimeout,
                      Map<String, String> env, Duration hangTimeout, String readyLog) {
    public static final Duration DEFAULT_STARTUP = Duration.ofSeconds(600);

    public Profile {
        env = env == null ? Map.of() : Map.copyOf(env);
        startupTimeout = startupTimeout == null ? DEFAULT_STARTUP : startupTimeout;
        if (healthPath != null && !healthPath.startsWith("/")) {
            healthPath = "/" + healthPath;
        }
        if (readyLog != null) {
            java.util.regex.Pattern.compile(readyLog);   // a bad expression is the caller's one-line error, now
        }
    }

    public Profile(String name, ArgvTemplate command, String healthPath, Duration startupTimeout,
                   Map<String, String> env, Duration hangTimeout) {
        this(name, command, healthPath, startupTimeout, env, hangTimeout, null);
    }

    public Profile(String name, ArgvTemplate command, String healthPath, Duration startupTimeout, Map<String, String> env) {
        this(name, command, healthPath, startupTimeout, env, null);
    }

    public Profile withHealthPath(String path) {
        return new Profile(name, command, path, startupTimeout, env, hangTimeout, readyLog);
    }

    public Profile withCommand(ArgvTemplate newCommand) {
        return new Profile(name, newCommand, healthPath, startupTimeout, env, hangTimeout, readyLog);
    }

    public Profile withStartupTimeout(Duration timeout) {
        return new Profile(name, command, healthPath, timeout, env, hangTimeout, readyLog);
    }

    /** @param regex a line of the server's log that must appear before it counts as ready (null: none) */
    public Profile withReadyLog(String regex) {
        return new Profile(name, command, healthPath, startupTimeout, env, hangTimeout, regex);
    }
}
