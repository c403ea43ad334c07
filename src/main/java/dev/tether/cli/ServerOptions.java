package dev.tether.cli;

import dev.tether.proc.PortListeners;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawner;
import dev.tether.server.Profile;
import dev.tether.server.Profiles;
import dev.tether.server.ServerFlags;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** The options that say which server to run and where (a mixin shared by serve and run). */
final class ServerOptions {

    @Option(names = "--model", paramLabel = "M", description = "Model name or path, passed to the server as {model}.")
    String model;

    @Option(names = "--profile", paramLabel = "NAME",
            description = "Server profile: vllm, llama-server, sglang, embedded, or one from tether.yaml.")
    String profile;

    @Option(names = "--command", paramLabel = "\"ARGV TEMPLATE\"",
            description = "Any server: an argv template with {model} {port} {host}, split like a shell would but never run by one.")
    String command;

    @Option(names = "--health", paramLabel = "PATH|none",
            description = "Health path that answers 2xx when ready (default /health); none = ready when the port listens.")
    String health;

    @Option(names = "--ready-log", paramLabel = "REGEX",
            description = "Also wait until a line of the server's log matches REGEX (a Java regular expression), "
                    + "e.g. 'Uvicorn running on' (default: the profile's ready-log, none for the built-ins).")
    String readyLog;

    @Option(names = "--port", paramLabel = "P|auto", defaultValue = "8000",
            description = "Port for the server, or auto for a free one (default: ${DEFAULT-VALUE}).")
    String port;

    @Option(names = "--host", paramLabel = "H", defaultValue = "127.0.0.1",
            description = "Address the server binds (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--startup-timeout", paramLabel = "DURATION", converter = DurationConverter.class,
            description = "Give up if the server is not ready by then (default: the profile's, 600s).")
    Duration startupTimeout;

    @Option(names = "--grace", paramLabel = "DURATION", converter = DurationConverter.class, defaultValue = "10s",
            description = "How long the server gets after SIGTERM before SIGKILL (default: ${DEFAULT-VALUE}).")
    Duration grace;

    // ---- Server settings without a tether.yaml (issue 14): mapped onto the profile's argv by ServerFlags ----

    @Option(names = "--ctx", paramLabel = "N",
            description = "Total context in tokens, split over the slots (embedded: --ctx, llama-server: --ctx-size; "
                    + "default: 4096 per slot). Refused for other profiles.")
    Integer ctx;

    @Option(names = "--parallel", paramLabel = "N",
            description = "Requests decoded at once (embedded, llama-server: --parallel; vllm: --max-num-seqs; "
                    + "sglang: --max-running-requests; embedded default: 4).")
    Integer parallel;

    @Option(names = "--threads", paramLabel = "N",
            description = "CPU threads for inference (embedded, llama-server: --threads; default: all cores). Refused for other profiles.")
    Integer threads;

    @Option(names = "--executable", paramLabel = "PATH",
            description = "The server program for a profile (e.g. a llama-server build, a venv's vllm) instead of the one on PATH.")
    String executable;

    @Option(names = "--server-arg", paramLabel = "ARG",
            description = "One more argument for the server's argv (repeatable; write --server-arg=--flag for a flag). "
                    + "serve and run also take them after --.")
    List<String> serverArgs = new ArrayList<>();

    /** Words after {@code --} of serve and run, set by {@link #takeTrailingArgs}: appended after --server-arg's. */
    private List<String> trailingArgs = List.of();

    /** The words after {@code --} (serve, run); a positional word before it is a usage error. */
    void takeTrailingArgs(List<String> positional, CommandLine.Model.CommandSpec spec) {
        if (positional == null || positional.isEmpty()) {
            return;
        }
        List<String> original = spec.commandLine().getParseResult().originalArgs();
        int dashes = original.indexOf("--");
        int afterDashes = dashes < 0 ? 0 : original.size() - dashes - 1;
        if (positional.size() > afterDashes) {
            throw CliError.usage("unexpected argument '" + positional.getFirst() + "' (arguments for the server go after --, "
                    + "e.g. tether " + spec.name() + " --model M -- --flag value)");
        }
        trailingArgs = List.copyOf(positional);
    }

    ServerFlags flags() {
        List<String> extra = new ArrayList<>(serverArgs);
        extra.addAll(trailingArgs);
        return new ServerFlags(ctx, parallel, threads, executable, extra);
    }

    /** With --url nothing is started: the settings for a server are refused (exit 2), as the other server options are. */
    void refuseWithUrl(CommandLine.Model.CommandSpec spec) {
        Endpoint.refuse(spec, "--ctx", "--parallel", "--threads", "--executable", "--server-arg", "--ready-log");
        if (!trailingArgs.isEmpty()) {
            throw CliError.usage("arguments after -- are for a server tether starts, and --url uses an existing one; "
                    + "drop them or drop --url");
        }
    }

    // ---- end of issue 14's settings ----

    /** Resolves the options into a spec, or throws a one-line usage error; nothing is started. */
    ServerSpec toSpec(TetherHome home) {
        return toSpec(home, model);
    }

    /** The same server options for another model (a run's question generator or judge). */
    ServerSpec toSpec(TetherHome home, String model) {
        Profile chosen = resolveProfile(home, model);
        if (health != null) {
            chosen = chosen.withHealthPath(health.equals("none") ? null : health);
        }
        if (readyLog != null) {
            try {
                chosen = chosen.withReadyLog(readyLog);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw CliError.usage("--ready-log '" + readyLog + "' is not a regular expression: " + e.getDescription());
            }
        }
        if (startupTimeout != null) {
            chosen = chosen.withStartupTimeout(startupTimeout);
        }
        try {
            chosen = flags().applyTo(chosen, Profiles.isBuiltIn(chosen));
        } catch (IllegalArgumentException e) {
            throw CliError.usage(e.getMessage());
        }
        if ((model == null || model.isBlank()) && chosen.command().mentions("model")) {
            throw CliError.usage("--model is needed: the " + chosen.name() + " profile's command uses {model}");
        }
        if (model != null && chosen.command().mentions("model")
                && (looksLikeAPath(model) || (chosen.name().equals(Profiles.EMBEDDED) && !model.equals("tiny"))) && !Files.exists(Path.of(model))) {
            // Found out now, not from a server that starts and dies (exit 3) after minutes of loading.
            throw CliError.usage("model file not found: " + model + " (give the path of an existing model file or "
                    + "directory, or --model tiny)");
        }
        ServerSpec spec = new ServerSpec(model, chosen, host, parsePort(port), grace);
        try {
            Spawner.resolveExecutable(spec.argv(1).getFirst(), chosen.env().get("PATH"));
        } catch (SpawnException e) {
            throw CliError.usage(e.getMessage() + " — the server command of profile " + chosen.name());
        }
        return spec;
    }

    private Profile resolveProfile(TetherHome home, String model) {
        try {
            if (command != null) {
                if (profile != null && !profile.equals(Profiles.COMMAND)) {
                    throw CliError.usage("--command and --profile " + profile + " cannot be combined; choose one");
                }
                return Profiles.command(command, "/health");
            }
            Profiles profiles = Profiles.load(home, Path.of("").toAbsolutePath());
            String name = profile;
            if (name == null) {
                if ("tiny".equals(model) || (model != null && model.endsWith(".gguf"))) {
                    name = Profiles.EMBEDDED;
                } else if (model == null) {
                    throw CliError.usage("say what to serve: --model tiny (or a .gguf file) for the embedded engine, "
                            + "--profile NAME --model M, or --command \"ARGV TEMPLATE\"");
                } else {
                    throw CliError.usage("which server should run " + (model == null ? "the model" : "'" + model + "'")
                            + "? Give --profile (" + String.join(", ", profiles.names()) + ") or --command \"...\"");
                }
            }
            if (name.equals(Profiles.COMMAND)) {
                throw CliError.usage("--profile command needs --command \"ARGV TEMPLATE\"");
            }
            String finalName = name;
            return profiles.find(name).orElseThrow(() -> CliError.usage("unknown profile '" + finalName
                    + "' (known: " + String.join(", ", profiles.names()) + "; add your own in tether.yaml)"));
        } catch (Profiles.ProfileException | IllegalArgumentException e) {
            throw CliError.usage(e.getMessage());
        }
    }

    /** A model named by a path (a .gguf file, or absolute or relative to here), not a name a server looks up. */
    static boolean looksLikeAPath(String model) {
        return model.endsWith(".gguf") || model.startsWith("/") || model.startsWith("./") || model.startsWith("../");
    }

    static int parsePort(String text) {
        if (text.equals("auto")) {
            return ServerSpec.AUTO_PORT;
        }
        try {
            long p = Long.parseLong(text.trim());
            if (PortListeners.isValidPort(p)) {
                return (int) p;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw CliError.usage("--port must be a number from 1 to 65535 or auto, not '" + text + "'");
    }
}
