package dev.tether.cli;

import dev.tether.client.ServerRecovery;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine;

/**
 * {@code --url URL}: an existing OpenAI-compatible endpoint that tether does not manage (issue 11). The URL is
 * the server's base, with or without a trailing {@code /v1}; both mean the same server.
 *
 * @param base the base URL without {@code /v1} and without a trailing slash (what the client and TETHER_URL get)
 * @param port the URL's port (80 or 443 when it names none)
 */
record Endpoint(String base, int port) {

    /** Parses and normalises --url, or throws a one-line usage error. */
    static Endpoint parse(String url) {
        String text = url.trim();
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw CliError.usage("--url " + url + " is not a URL (" + e.getReason() + "); give the server's base, "
                    + "for example http://host:8000 or http://host:8000/v1");
        }
        String scheme = uri.getScheme() == null ? null : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!"http".equals(scheme) && !"https".equals(scheme) || uri.getHost() == null) {
            throw CliError.usage("--url " + url + " needs http:// or https:// and a host, for example http://host:8000");
        }
        if (uri.getQuery() != null || uri.getFragment() != null) {
            throw CliError.usage("--url " + url + " has a query or fragment; give only the server's base, for example http://host:8000");
        }
        String path = uri.getRawPath() == null ? "" : uri.getRawPath();
        while (path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        if (path.endsWith("/v1")) {
            path = path.substring(0, path.length() - 3);
        }
        int port = uri.getPort() != -1 ? uri.getPort() : scheme.equals("https") ? 443 : 80;
        String authority = uri.getRawAuthority();
        return new Endpoint(scheme + "://" + authority + path, port);
    }

    /** The line that says tether manages nothing here. */
    String usingLine() {
        return "Using endpoint " + base + " (not managed by tether: nothing is started or stopped)";
    }

    /** The API key: --api-key, else OPENAI_API_KEY when set and not empty, else none. */
    static String apiKey(String option) {
        if (option != null) {
            return option.isEmpty() ? null : option;
        }
        String env = System.getenv("OPENAI_API_KEY");
        return env == null || env.isEmpty() ? null : env;
    }

    /** Options that start or manage a server make no sense with --url: refused (exit 2) when given explicitly. */
    static void refuse(CommandLine.Model.CommandSpec spec, String... names) {
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        List<String> given = new ArrayList<>();
        for (String n : names) {
            if (parsed != null && parsed.hasMatchedOption(n)) {
                given.add(n);
            }
        }
        if (!given.isEmpty()) {
            throw CliError.usage(String.join(", ", given) + (given.size() == 1 ? " starts or manages" : " start or manage")
                    + " a server, and --url uses an existing one that tether does not manage; drop "
                    + (given.size() == 1 ? "it" : "them") + " or drop --url");
        }
    }

    /**
     * When failure records in these outputs got 401 or 403 from the endpoint: what to do about the key, for the
     * exit line; null otherwise. Reads only on failure, line by line.
     */
    static String keyHint(List<String> outputs, boolean keyGiven) {
        for (String output : outputs) {
            java.nio.file.Path file = output == null ? null : java.nio.file.Path.of(output);
            if (file == null || !java.nio.file.Files.isRegularFile(file)) {
                continue;
            }
            try (var lines = java.nio.file.Files.lines(file)) {
                var status = lines.map(line -> {
                    try {
                        return dev.tether.pipeline.Jsonl.JSON.readTree(line).path("error").path("status").asInt(0);
                    } catch (java.io.IOException | RuntimeException e) {
                        return 0;
                    }
                }).filter(s -> s == 401 || s == 403).findFirst();
                if (status.isPresent()) {
                    return "the endpoint answered HTTP " + status.get() + (keyGiven
                            ? ": it refuses the API key given (check --api-key or OPENAI_API_KEY)"
                            : ": it needs an API key; give it with --api-key KEY or OPENAI_API_KEY");
                }
            } catch (java.io.IOException | java.io.UncheckedIOException e) {
                // no hint
            }
        }
        return null;
    }

    /**
     * The client's recovery for an endpoint tether does not manage: nothing to restart, so a request that got no
     * answer is simply retried with back-off (within --retries) and then becomes a failure record.
     */
    static ServerRecovery neverRestarts() {
        return cause -> true;
    }
}
