package dev.tether.server.embedded;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * llama.cpp grammars for {@code response_format}: {@code json_object} and {@code json_schema}.
 *
 * <p>The binding's {@code LlamaModel.jsonSchemaToGrammar} is llama.cpp's own converter, but a schema it
 * cannot convert (an unresolvable {@code $ref}, an unknown type) throws a C++ exception that nothing
 * catches: the whole engine aborts. So each distinct schema is converted once in a short-lived child
 * JVM ({@link #main}); a child that aborts is a 400 carrying llama.cpp's reason, and the engine stays
 * up. Converted grammars are kept (judges send the same schema with every request).
 */
final class Grammars {
    /** A JSON object (any keys): what {@code json_object} asks for. */
    static final String OBJECT_SCHEMA = "{\"type\":\"object\"}";

    private static final int MAX_KEPT = 256;

    private final Path nativeDir;
    private final Map<String, String> converted = new ConcurrentHashMap<>();

    Grammars(Path nativeDir) {
        this.nativeDir = nativeDir;
    }

    /** The grammar for a JSON schema (its text), or an ApiError 400 saying why llama.cpp cannot convert it. */
    String forSchema(String schema) {
        String grammar = converted.get(schema);
        if (grammar == null) {
            grammar = convert(schema);
            if (converted.size() >= MAX_KEPT) {
                converted.clear();   // a client inventing schemas must not grow this without bound
            }
            converted.put(schema, grammar);
        }
        return grammar;
    }

    private String convert(String schema) {
        List<String> argv = List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx64m",
                "-Xshare:auto", "-cp", System.getProperty("java.class.path"), Grammars.class.getName(), nativeDir.toString());
        try {
            Process child = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.PIPE).start();
            try (var in = child.getOutputStream()) {
                in.write(schema.getBytes(StandardCharsets.UTF_8));
            }
            var stderr = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return child.getErrorStream().readAllBytes();
                } catch (IOException e) {
                    return new byte[0];
                }
            }, java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor());
            var out = child.getInputStream().readAllBytes();
            var err = stderr.join();
            if (!child.waitFor(60, TimeUnit.SECONDS)) {
                child.destroyForcibly();
                throw new ApiError(500, "server_error", null, "converting the JSON schema to a grammar took over 60 s");
            }
            if (child.exitValue() != 0) {
                throw ApiError.badRequest("response_format: llama.cpp cannot turn this JSON schema into a grammar: "
                        + reason(new String(err, StandardCharsets.UTF_8)));
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ApiError(500, "server_error", null, "cannot start the schema converter: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiError(503, "server_error", null, "interrupted while converting the JSON schema");
        }
    }

    /** llama.cpp's message, from the {@code what():} line of an uncaught exception (and what follows it). */
    static String reason(String stderr) {
        int at = stderr.indexOf("what():");
        String text = at < 0 ? stderr : stderr.substring(at + "what():".length());
        return String.join(" ", text.strip().lines().map(String::strip).filter(l -> !l.isEmpty()).toList())
                .replace("JSON schema conversion failed: ", "");
    }

    /** The child: schema on stdin, grammar on stdout; an unconvertible schema aborts this JVM, not the engine. */
    public static void main(String[] args) throws IOException {
        System.setProperty("de.kherud.llama.lib.path", args[0]);
        System.setProperty("de.kherud.llama.tmpdir", args[0]);
        String schema = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        System.out.print(de.kherud.llama.LlamaModel.jsonSchemaToGrammar(schema));
        System.out.flush();
    }
}
