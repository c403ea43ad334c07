package dev.tether.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The built-in profiles plus user profiles from {@code tether.yaml} (the working directory's first,
 * then {@code $TETHER_HOME/tether.yaml}):
 * <pre>
 * profiles:
 *   big-vllm:
 *     command: ["vllm", "serve", "{model}", "--host", "{host}", "--port", "{port}", "-tp", "2"]
 *     health: /health          # or: none
 *     startup-timeout: 900s
 *     hang-timeout: 300s       # a run's --hang-timeout for this profile
 *     ready-log: "Uvicorn running on"   # also wait for a log line matching this (a Java regex)
 *     env: {CUDA_VISIBLE_DEVICES: "0,1"}
 * </pre>
 * {@code command} may also be one string, split like a shell would (never run by one).
 */
public final class Profiles {
    public static final String COMMAND = "command";
    public static final String EMBEDDED = "embedded";

    private final Map<String, Profile> profiles = new LinkedHashMap<>();

    private Profiles() {
        builtIn("vllm", "vllm serve {model} --host {host} --port {port}", "/health");
        builtIn("llama-server", "llama-server -m {model} --host {host} --port {port}", "/health");
        builtIn("sglang", "python3 -m sglang.launch_server --model-path {model} --host {host} --port {port}", "/health");
        profiles.put(EMBEDDED, embedded());
    }

    /**
     * tether's own engine (llama.cpp in a child JVM): {@code tiny} or any GGUF file. Its heap stays
     * small; the model lives in native memory.
     */
    static Profile embedded() {
        List<String> argv = new ArrayList<>(JavaCommand.of(List.of("-XX:+UseSerialGC", "-Xmx256m", "-Xshare:auto"),
                "dev.tether.server.embedded.EmbeddedServer"));
        argv.addAll(List.of("--model", "{model}", "--host", "{host}", "--port", "{port}"));
        return new Profile(EMBEDDED, new ArgvTemplate(argv), "/health", null, Map.of());
    }

    private void builtIn(String name, String command, String health) {
        profiles.put(name, new Profile(name, ArgvTemplate.parse(command), health, null, Map.of()));
    }

    /** Built-ins only. */
    public static Profiles builtIns() {
        return new Profiles();
    }

    /** Built-ins, then $TETHER_HOME/tether.yaml, then ./tether.yaml (later files win). */
    public static Profiles load(TetherHome home, Path workingDir) {
        Profiles p = new Profiles();
        for (Path file : List.of(home.root().resolve("tether.yaml"), workingDir.resolve("tether.yaml"))) {
            if (Files.isRegularFile(file)) {
                p.readFile(file);
            }
        }
        return p;
    }

    /** Whether a profile is a built-in one as shipped (not a tether.yaml profile that reuses a built-in's name). */
    public static boolean isBuiltIn(Profile profile) {
        return builtIns().find(profile.name()).filter(b -> b.command().equals(profile.command())).isPresent();
    }

    public Optional<Profile> find(String name) {
        return Optional.ofNullable(profiles.get(name));
    }

    public List<String> names() {
        List<String> names = new ArrayList<>(profiles.keySet());
        names.add(COMMAND);
        return names;
    }

    /** A profile for {@code --command "ARGV TEMPLATE"}. */
    public static Profile command(String template, String healthPath) {
        return new Profile(COMMAND, ArgvTemplate.parse(template), healthPath, null, Map.of());
    }

    private void readFile(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper(new YAMLFactory()).readTree(file.toFile());
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            var l = e.getLocation();
            String at = l == null || l.getLineNr() < 1 ? file.toString() : file + ":" + l.getLineNr() + ":" + l.getColumnNr();
            throw new ProfileException(at + ": not valid YAML: " + firstLine(e.getOriginalMessage()));
        } catch (IOException e) {
            throw new ProfileException(file + ": not valid YAML: " + firstLine(e.getMessage()));
        }
        Map<String, com.fasterxml.jackson.core.JsonLocation> where = locate(file);
        if (root == null || root.isMissingNode() || root.isNull()) {
            return;
        }
        JsonNode section = root.get("profiles");
        if (section == null || !section.isObject()) {
            throw new ProfileException(at(file, where, "/profiles") + ": expected a top-level 'profiles:' mapping");
        }
        for (var entry : section.properties()) {
            profiles.put(entry.getKey(), parseProfile(file, where, entry.getKey(), entry.getValue()));
        }
    }

    /** Where each key of the file is (JSON pointer to line and column), for messages: {@code file:line:column}. */
    private static Map<String, com.fasterxml.jackson.core.JsonLocation> locate(Path file) {
        Map<String, com.fasterxml.jackson.core.JsonLocation> at = new java.util.HashMap<>();
        try (var p = new YAMLFactory().createParser(file.toFile())) {
            com.fasterxml.jackson.core.JsonToken t;
            while ((t = p.nextToken()) != null) {
                if (t == com.fasterxml.jackson.core.JsonToken.FIELD_NAME) {
                    at.putIfAbsent(p.getParsingContext().pathAsPointer().toString(), p.currentTokenLocation());
                }
            }
        } catch (IOException e) {
            // already parsed once: cannot happen; messages then carry the file name only
        }
        return at;
    }

    /** {@code file:line:column} of the key a pointer names (the nearest enclosing key found), else the file. */
    private static String at(Path file, Map<String, com.fasterxml.jackson.core.JsonLocation> where, String pointer) {
        for (String p = pointer; !p.isEmpty(); p = p.substring(0, p.lastIndexOf('/'))) {
            var l = where.get(p);
            if (l != null && l.getLineNr() > 0) {
                return file + ":" + l.getLineNr() + ":" + l.getColumnNr();
            }
        }
        return file.toString();
    }

    private static String pointer(String... names) {
        StringBuilder b = new StringBuilder();
        for (String n : names) {
            b.append('/').append(n.replace("~", "~0").replace("/", "~1"));
        }
        return b.toString();
    }

    /** The keys a profile in tether.yaml may have. */
    static final List<String> KEYS = List.of("command", "health", "startup-timeout", "hang-timeout", "ready-log", "env");

    private static Profile parseProfile(Path file, Map<String, com.fasterxml.jackson.core.JsonLocation> at, String name,
                                        JsonNode node) {
        String where = at(file, at, pointer("profiles", name)) + ": profile '" + name + "'";
        if (!node.isObject()) {
            throw new ProfileException(where + ": expected a mapping with 'command'");
        }
        // A misspelt key (comand, startup_timeout) would otherwise be ignored silently, or reported as a missing one.
        for (String key : (Iterable<String>) () -> node.fieldNames()) {
            if (!KEYS.contains(key)) {
                throw new ProfileException(at(file, at, pointer("profiles", name, key)) + ": profile '" + name + "': unknown key '" + key + "' (known: " + String.join(", ", KEYS) + ")");
            }
        }
        JsonNode command = node.get("command");
        ArgvTemplate template;
        try {
            if (command == null) {
                throw new ProfileException(where + ": 'command' is missing");
            } else if (command.isTextual()) {
                template = ArgvTemplate.parse(command.asText());
            } else if (command.isArray()) {
                List<String> words = new ArrayList<>();
                command.forEach(w -> words.add(w.asText()));
                template = new ArgvTemplate(words);
            } else {
                throw new ProfileException(at(file, at, pointer("profiles", name, "command")) + ": profile '" + name
                        + "': 'command' must be a list of words or one string");
            }
        } catch (IllegalArgumentException e) {
            throw new ProfileException(where + ": " + e.getMessage());
        }
        String health = "/health";
        if (node.has("health")) {
            String h = node.get("health").asText();
            health = h.equals("none") ? null : h;
        }
        Duration startup = null;
        if (node.has("startup-timeout")) {
            startup = parseDuration(at(file, at, pointer("profiles", name, "startup-timeout")) + ": profile '" + name
                    + "': 'startup-timeout'", node.get("startup-timeout").asText());
        }
        Duration hang = null;
        if (node.has("hang-timeout")) {
            hang = parseDuration(where + ": 'hang-timeout'", node.get("hang-timeout").asText());
            if (hang.isZero()) {
                throw new ProfileException(where + ": 'hang-timeout' must be more than 0");
            }
        }
        Map<String, String> env = new TreeMap<>();
        JsonNode envNode = node.get("env");
        if (envNode != null) {
            if (!envNode.isObject()) {
                throw new ProfileException(at(file, at, pointer("profiles", name, "env")) + ": profile '" + name
                        + "': 'env' must be a mapping of NAME: value");
            }
            envNode.properties().forEach(e -> env.put(e.getKey(), e.getValue().asText()));
        }
        String readyLog = null;
        if (node.has("ready-log")) {
            readyLog = node.get("ready-log").asText();
            try {
                java.util.regex.Pattern.compile(readyLog);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new ProfileException(at(file, at, pointer("profiles", name, "ready-log")) + ": profile '" + name
                        + "': 'ready-log' is not a regular expression: " + e.getDescription());
            }
        }
        return new Profile(name, template, health, startup, env, hang, readyLog);
    }

    static Duration parseDuration(String where, String text) {
        var m = java.util.regex.Pattern.compile("(\\d+)(ms|s|m|h)?").matcher(text.trim());
        if (!m.matches()) {
            throw new ProfileException(where + ": '" + text + "' is not a duration (examples: 500ms, 90s, 10m)");
        }
        long n = Long.parseLong(m.group(1));
        return switch (m.group(2) == null ? "s" : m.group(2)) {
            case "ms" -> Duration.ofMillis(n);
            case "m" -> Duration.ofMinutes(n);
            case "h" -> Duration.ofHours(n);
            default -> Duration.ofSeconds(n);
        };
    }

    private static String firstLine(String s) {
        return s == null ? "" : s.lines().findFirst().orElse("");
    }

    /** A profile file or name is wrong: a usage error, nothing started. */
    public static final class ProfileException extends RuntimeException {
        public ProfileException(String message) {
            super(message);
        }
    }
}
