package dev.tether.server.embedded;

import dev.tether.server.TetherHome;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executors;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * tether's own OpenAI-compatible server (DESIGN 5), run as a child JVM by the {@code embedded}
 * profile:
 * <pre>java ... dev.tether.server.embedded.EmbeddedServer --model tiny|FILE.gguf --host H --port P [--parallel N] [--ctx N] [--threads N]</pre>
 * It listens at once and answers {@code /health} with 503 while the model loads, then 200.
 *
 * <p>HTTP is Jetty 12 (core API, no servlets) with handlers on virtual threads: a library made for
 * serving HTTP, with streaming writes that report a client that left, which the JDK's built-in
 * server does not do well. Javalin and Helidon would also fit; Jetty is the smallest dependency that
 * does it.
 */
public final class EmbeddedServer {
    private static volatile Engine engine;

    private EmbeddedServer() {}

    public static void main(String[] args) {
        Options options;
        try {
            options = Options.parse(args);
        } catch (IllegalArgumentException e) {
            fail(2, e.getMessage());
            return;
        }
        TetherHome home = TetherHome.fromEnvironment();
        Path model;
        Path nativeLibrary;
        try {
            model = resolveModel(options.model, home);
            nativeLibrary = NativeLibrary.prepare(home.root().resolve("native"));
        } catch (IllegalArgumentException e) {
            fail(2, e.getMessage());
            return;
        } catch (IOException e) {
            fail(1, e.getMessage());
            return;
        }
        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setName("http");
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        Server server = new Server(threads);
        ServerConnector connector = new ServerConnector(server);
        connector.setHost(options.host);
        connector.setPort(options.port);
        server.addConnector(connector);
        server.setHandler(new OpenAiHandler(() -> engine, new Grammars(nativeLibrary.getParent())));
        try {
            server.start();
        } catch (Exception e) {
            fail(1, "cannot listen on " + options.host + ":" + options.port + ": " + e.getMessage());
            return;
        }
        log("listening on " + options.host + ":" + connector.getLocalPort() + "; loading " + model);
        if (options.model.equals(TinyModel.NAME)) {
            log("model 'tiny' has random weights: its text is meaningless (it exists to exercise servers and pipelines)");
        }
        long t0 = System.nanoTime();
        try {
            de.kherud.llama.LlamaModel.setLogger(de.kherud.llama.args.LogFormat.TEXT, (level, message) -> {
                if (level == de.kherud.llama.LogLevel.WARN || level == de.kherud.llama.LogLevel.ERROR) {
                    System.err.print("[llama.cpp] " + message);
                }
            });
            engine = new Engine(model, options.servedName(), options.context, options.parallel, options.threads);
        } catch (RuntimeException | LinkageError e) {
            fail(1, "cannot load model " + model + ": " + e.getMessage());
            return;
        }
        log(String.format("ready: model '%s' loaded in %.1f s (%d parallel slots of %d tokens)", options.servedName(),
                (System.nanoTime() - t0) / 1e9, options.parallel, options.context / options.parallel));
        try {
            server.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** "tiny" is generated on first use; anything else must be an existing GGUF file. */
    static Path resolveModel(String model, TetherHome home) throws IOException {
        if (model.equals(TinyModel.NAME)) {
            return TinyModel.ensure(home.models());
        }
        Path file = Path.of(model);
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("model file not found: " + model + " (give a path to a .gguf file, or 'tiny')");
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            if (!new String(magic, java.nio.charset.StandardCharsets.ISO_8859_1).equals("GGUF")) {
                throw new IllegalArgumentException("not a GGUF model file: " + model + " (it does not start with 'GGUF')");
            }
        }
        return file;
    }

    private static void log(String line) {
        System.out.println("[tether engine] " + line);
        System.out.flush();
    }

    private static void fail(int code, String message) {
        System.err.println("tether engine: " + message);
        System.err.flush();
        System.exit(code);
    }

    /** Command-line options (a small fixed set: no parser library needed in the child). */
    record Options(String model, String host, int port, int parallel, int context, int threads, String name) {
        String servedName() {
            return name != null ? name : model;
        }

        static Options parse(String[] args) {
            String model = null;
            String host = "127.0.0.1";
            int port = 8000;
            int parallel = 4;
            Integer context = null;   // default: 4096 tokens per slot
            int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
            String name = null;
            for (int i = 0; i < args.length; i++) {
                String flag = args[i];
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("missing value after " + flag);
                }
                String value = args[++i];
                switch (flag) {
                    case "--model" -> model = value;
                    case "--host" -> host = value;
                    case "--port" -> port = number(flag, value);
                    case "--parallel" -> parallel = number(flag, value);
                    case "--ctx" -> context = number(flag, value);
                    case "--threads" -> threads = number(flag, value);
                    case "--served-name" -> name = value;
                    default -> throw new IllegalArgumentException("unknown option " + flag);
                }
            }
            if (model == null || model.isBlank()) {
                throw new IllegalArgumentException("--model is required (tiny, or a path to a .gguf file)");
            }
            if (context == null) {
                context = 4096 * Math.max(1, parallel);
            }
            if (parallel < 1 || context < parallel * 16) {
                throw new IllegalArgumentException("--parallel must be at least 1 and --ctx at least 16 tokens per slot");
            }
            return new Options(model, host, port, parallel, context, threads, name);
        }

        private static int number(String flag, String value) {
            try {
                return Integer.parseInt(value);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + " must be a number, not '" + value + "'");
            }
        }
    }
}
