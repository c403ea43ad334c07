package dev.tether.server;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * What to start: a model through a profile, on a host and port.
 *
 * @param port  a TCP port, or {@link #AUTO_PORT} for "pick a free one"
 * @param grace     how long members get after SIGTERM before SIGKILL
 * @param placement which replica of a pool this is, and its own environment ({@link Placement#SINGLE} alone)
 */
public record ServerSpec(String model, Profile profile, String host, int port, Duration grace, Placement placement) {
    public static final int AUTO_PORT = 0;
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(10);

    public ServerSpec {
        host = host == null || host.isBlank() ? "127.0.0.1" : host;
        grace = grace == null ? DEFAULT_GRACE : grace;
        placement = placement == null ? Placement.SINGLE : placement;
    }

    public ServerSpec(String model, Profile profile, String host, int port, Duration grace) {
        this(model, profile, host, port, grace, Placement.SINGLE);
    }

    public ServerSpec withPort(int newPort) {
        return new ServerSpec(model, profile, host, newPort, grace, placement);
    }

    public ServerSpec withPlacement(Placement newPlacement) {
        return new ServerSpec(model, profile, host, port, grace, newPlacement);
    }

    /** The profile's environment with this replica's own on top. */
    public Map<String, String> env() {
        Map<String, String> env = new java.util.HashMap<>(profile.env());
        env.putAll(placement.env());
        return env;
    }

    public List<String> argv(int actualPort) {
        return profile.command().render(Map.of("model", model == null ? "" : model,
                "port", String.valueOf(actualPort), "host", host));
    }

    /** The health URL must use a host one can connect to: a wildcard bind becomes loopback (DESIGN 3.8). */
    public static String connectableHost(String host) {
        return switch (host) {
            case "0.0.0.0", "" -> "127.0.0.1";
            case "::", "[::]" -> "[::1]";
            default -> host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host;
        };
    }

    public static String baseUrl(String host, int port) {
        return "http://" + connectableHost(host) + ":" + port;
    }
}
