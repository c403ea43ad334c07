package dev.tether.cli;

import dev.tether.client.ReplicaProxy;
import java.io.IOException;
import java.net.URI;
import dev.tether.proc.SpawnException;
import dev.tether.proc.Spawner;
import dev.tether.proc.StopReport;
import dev.tether.server.Job;
import dev.tether.server.Lease;
import dev.tether.server.LeaseStore;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.ServerStartException;
import dev.tether.server.TetherHome;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code tether exec [server options] -- CMD [ARGS...]}: starts (or reuses) a server per model, waits until
 * it is ready, runs any job against it, stops the server, and exits with the job's code.
 *
 * <p>The job is tethered too: it runs under its own {@link dev.tether.server.JobShim} with a lease of kind
 * {@value Job#KIND}, so kill -9 of tether takes down the job's tree as well as the servers'. Ctrl-C reaches
 * the job first (SIGINT to its process group), then after {@code --job-grace} its tree is stopped, then
 * the servers. tether's own lines go to stderr, each beginning {@code tether:} for a failure of its own,
 * so that the job's stdout stays the job's.
 */
@Command(name = "exec", mixinStandardHelpOptions = true,
        description = {"Run any job (a script, an eval harness) against a server tether starts and stops.",
                "The job gets OPENAI_BASE_URL=<url>/v1, OPENAI_API_BASE, OPENAI_API_KEY (kept if set, else 'tether'), "
                        + "TETHER_URL, TETHER_PORT, TETHER_MODEL (and TETHER_URL_<MODEL> per model); "
                        + "{url} {port} {model} in its arguments are replaced.",
                "tether exits with the job's exit code; when the job never ran, with its own (2 usage, 3 server failed, "
                        + "4 port held) after a `tether:` line on stderr."},
        footer = {"", "--model may be given several times: one server per model, on ports P, P+1, ... (or auto each), "
                + "each exported as TETHER_URL_<NAME> (NAME = the model upper-cased, other characters than A-Z 0-9 as _).",
                "Ctrl-C: the job gets SIGINT first and --job-grace to end; then its tree is stopped, then the servers; exit 130.",
                "Example: tether exec --model M --profile vllm --port 8000 -- python -m tasks.shortform.precise_wikiqa --do_inference ..."})
final class ExecCommand implements Callable<Integer> {

    @Mixin
    ServerOptions server;

    @Option(names = "--job-grace", paramLabel = "DURATION", converter = DurationConverter.class, defaultValue = "10s",
            description = "After Ctrl-C (SIGINT to the job) or SIGTERM, how long the job gets before its tree is killed "
                    + "(default: ${DEFAULT-VALUE}).")
    Duration jobGrace;

    @Option(names = "--restarts", paramLabel = "n", defaultValue = "3",
            description = "How often a server that dies while the job runs is restarted on its port (default: ${DEFAULT-VALUE}).")
    int restarts;

    @Option(names = "--url", paramLabel = "URL",
            description = "Run the job against an existing OpenAI-compatible server at URL (its base, http://host:8000 or "
                    + "http://host:8000/v1: both mean the same) instead of starting one: no server is started or stopped, "
                    + "the job is still tethered. Server options (--profile, --command, --port, ...) are refused with it.")
    String url;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "The job's OPENAI_API_KEY (default: OPENAI_API_KEY when set, else 'tether'; never printed).")
    String apiKey;

    @Mixin
    ReplicaOptions pool;

    @Parameters(paramLabel = "CMD", arity = "0..*", description = "The job and its arguments, after --.")
    List<String> command = new ArrayList<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** The id the replicas of this job share in their leases (ps groups them). */
    private final String group = ReplicaOptions.newGroup();
    private final Object lock = new Object();
    private Job job;
    private boolean jobEnded;
    private int signalled;   // 0, or the exit code of the signal that arrived (130, 143)
    private int restartsUsed;
    private PrintWriter err;

    @Override
    public Integer call() throws InterruptedException {
        TetherCommand.requireLinux();
        err = spec.commandLine().getErr();
        Endpoint endpoint = null;
        if (url != null) {
            Endpoint.refuse(spec, "--profile", "--command", "--port", "--host", "--health", "--startup-timeout", "--grace",
                    "--restarts", "--replicas", "--gpus-per-replica", "--gpus");
            server.refuseWithUrl(spec);
            endpoint = Endpoint.parse(url);
            if (models().size() > 1) {
                throw CliError.usage("--url is one endpoint: give at most one --model with it (it becomes TETHER_MODEL)");
            }
        }
        pool.check(spec, spec.commandLine().getParseResult().hasMatchedOption("--port"), server.port);
        if (command.isEmpty()) {
            throw CliError.usage("say which job to run, after --: tether exec --model tiny -- CMD [ARGS...]");
        }
        if (jobGrace.isNegative() || restarts < 0) {
            throw CliError.usage("--job-grace and --restarts cannot be negative");
        }
        try {
            Spawner.resolveExecutable(command.getFirst(), null);
        } catch (SpawnException e) {
            throw CliError.usage(e.getMessage() + " — the job's command (after --)");
        }
        TetherHome home = TetherHome.fromEnvironment();
        if (endpoint != null) {
            // Nothing to start, watch or stop: the job runs against the endpoint, tethered as always.
            installSignals();
            say(endpoint.usingLine());
            String model = server.model;
            return runJob(home, substitute(command, endpoint.base(), endpoint.port(), model),
                    environment(endpoint, model), model, null, () -> {});
        }
        List<ServerSpec> specs = specs(home);
        installSignals();
        ExecEvents events = new ExecEvents(new ConsoleEvents(err));
        try (ServerManager manager = new ServerManager(home, events)) {
            List<ServerHandle> servers = startAll(manager, specs);
            Map<String, Front> fronts = new LinkedHashMap<>();
            try {
                for (var group : byModel(servers).entrySet()) {
                    fronts.put(group.getKey(), Front.of(group.getValue()));
                }
                Map<String, String> env = environment(servers, fronts);
                Front first = fronts.values().iterator().next();
                List<String> argv = substitute(command, first.url(), first.port(), servers.getFirst().model());
                return runJob(home, argv, env, servers.getFirst().model(), events, () -> servers.forEach(this::watch));
            } finally {
                fronts.values().forEach(Front::close);
            }
        }
    }

    /** A model's servers, in start order ("" for a server without a model). */
    private static Map<String, List<ServerHandle>> byModel(List<ServerHandle> servers) {
        Map<String, List<ServerHandle>> groups = new LinkedHashMap<>();
        for (ServerHandle s : servers) {
            groups.computeIfAbsent(s.model() == null ? "" : s.model(), m -> new ArrayList<>()).add(s);
        }
        return groups;
    }

    /**
     * The one URL a job is given for a model: its server's, or, for replicas, a {@link ReplicaProxy} in front of
     * them (in this JVM, on loopback) that spreads the job's requests over the pool.
     */
    private record Front(String url, int port, ReplicaProxy proxy) implements AutoCloseable {
        static Front of(List<ServerHandle> replicas) {
            if (replicas.size() == 1) {
                return new Front(replicas.getFirst().baseUrl(), replicas.getFirst().port(), null);
            }
            try {
                ReplicaProxy proxy = ReplicaProxy.start(replicas.stream().map(ServerHandle::baseUrl).toList());
                return new Front(proxy.baseUrl(), URI.create(proxy.baseUrl()).getPort(), proxy);
            } catch (IOException e) {
                throw new CliError(ExitCode.JOB_FAILED, "cannot open the replicas' proxy on loopback: " + e.getMessage(), e);
            }
        }

        @Override
        public void close() {
            if (proxy != null) {
                proxy.close();
            }
        }
    }

    /**
     * Starts the servers in parallel (replicas, and one server per model) and waits for all: the first failure, if
     * any, is the exit (the manager's close stops the others).
     */
    private static List<ServerHandle> startAll(ServerManager manager, List<ServerSpec> specs) {
        if (specs.size() == 1) {
            return List.of(Servers.start(manager, specs.getFirst()));
        }
        List<java.util.concurrent.Future<ServerHandle>> pending = new ArrayList<>();
        try (var starts = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (ServerSpec s : specs) {
                pending.add(starts.submit(() -> Servers.start(manager, s)));
            }
        }
        List<ServerHandle> servers = new ArrayList<>();
        for (var p : pending) {
            try {
                servers.add(p.resultNow());
            } catch (IllegalStateException e) {
                Throwable cause = p.exceptionNow();
                throw cause instanceof RuntimeException r ? r : new IllegalStateException(cause);
            }
        }
        return servers;
    }

    /** Starts the job (tethered by its shim), waits for it, and returns its exit code (or the signal's). */
    private int runJob(TetherHome home, List<String> argv, Map<String, String> env, String model, ExecEvents events,
                       Runnable watchServers) throws InterruptedException {
        Job started;
        synchronized (lock) {
            if (signalled != 0) {
                return signalled;   // the exit under way stops the servers
            }
            try {
                started = Job.start(home, argv, env, model, jobGrace);
            } catch (SpawnException e) {
                throw CliError.usage("cannot start the job: " + e.getMessage());
            }
            job = started;
        }
        if (events != null) {
            events.quiet = true;   // while the job owns the terminal, a restart is one line, not four
        }
        Thread hook = new Thread(() -> stopJob(started), "tether-stop-job");
        Runtime.getRuntime().addShutdownHook(hook);
        watchServers.run();
        Job.Outcome outcome = started.await();
        synchronized (lock) {
            jobEnded = true;
        }
        if (events != null) {
            events.quiet = false;
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // already shutting down
        }
        outcome.problem().ifPresent(p -> say("tether: " + p));
        synchronized (lock) {
            if (signalled != 0) {
                return signalled;
            }
        }
        return outcome.exitCode();
    }

    private static void stopJob(Job job) {
        try {
            if (job.isRunning()) {
                job.stop();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void say(String line) {
        err.println(line);
        err.flush();
    }

    /** One spec per model, each on its own port: P, P+1, ... (or auto each). */
    private List<ServerSpec> specs(TetherHome home) {
        List<String> models = models();
        if (new LinkedHashSet<>(models).size() != models.size()) {
            throw CliError.usage("the same --model is given twice: " + models);
        }
        if (models.size() > 1 && server.command != null && !server.command.contains("{model}")) {
            throw CliError.usage("several --model with a --command that does not use {model} would start the same server twice");
        }
        List<ServerSpec> specs = new ArrayList<>();
        for (int i = 0; i < models.size(); i++) {
            ServerSpec s = server.toSpec(home, models.get(i));
            if (s.port() != ServerSpec.AUTO_PORT && i > 0) {
                if (s.port() + i > 65535) {
                    throw CliError.usage("--port " + s.port() + " leaves no room for " + models.size() + " servers; use --port auto");
                }
                s = s.withPort(s.port() + i);
            }
            specs.addAll(pool.place(s, group));
        }
        Map<String, String> names = new LinkedHashMap<>();
        for (String m : models) {
            if (m != null && names.put(envName(m), m) != null) {
                throw CliError.usage("models " + names.get(envName(m)) + " and " + m + " would both export TETHER_URL_"
                        + envName(m) + "; give distinct names");
            }
        }
        return specs;
    }

    /** Every --model given (the option may repeat for exec), or the one (possibly null) of ServerOptions. */
    private List<String> models() {
        CommandLine.ParseResult parsed = spec.commandLine().getParseResult();
        CommandLine.Model.OptionSpec option = parsed == null ? null : parsed.matchedOption("--model");
        List<String> models = new ArrayList<>();
        if (option != null) {
            models.addAll(option.originalStringValues());
        }
        if (models.isEmpty()) {
            models.add(server.model);
        }
        return models;
    }

    /** NAME in TETHER_URL_NAME: the model upper-cased, every character but A-Z and 0-9 replaced by _. */
    static String envName(String model) {
        return model.toUpperCase(Locale.ROOT).replaceAll("[^A-Z0-9]", "_");
    }

    private static Map<String, String> environment(List<ServerHandle> servers, Map<String, Front> fronts) {
        ServerHandle first = servers.getFirst();
        Front front = fronts.values().iterator().next();
        Map<String, String> env = new LinkedHashMap<>();
        env.put("OPENAI_BASE_URL", front.url() + "/v1");
        env.put("OPENAI_API_BASE", front.url() + "/v1");
        String key = System.getenv("OPENAI_API_KEY");
        env.put("OPENAI_API_KEY", key == null || key.isEmpty() ? "tether" : key);
        env.put("TETHER_URL", front.url());
        env.put("TETHER_PORT", String.valueOf(front.port()));
        if (first.model() != null) {
            env.put("TETHER_MODEL", first.model());
        }
        // With replicas, TETHER_URL (and OPENAI_BASE_URL, {url}) is the proxy in front of them; TETHER_URLS names the
        // first model's replicas themselves, TETHER_URLS_NAME each model's, for a job that spreads its requests itself.
        for (var e : byModel(servers).entrySet()) {
            List<String> urls = e.getValue().stream().map(ServerHandle::baseUrl).toList();
            if (e.getValue().getFirst() == first) {
                env.put("TETHER_URLS", String.join(",", urls));
            }
            if (!e.getKey().isEmpty()) {
                Front f = fronts.get(e.getKey());
                env.put("TETHER_URL_" + envName(e.getKey()), f.url());
                env.put("TETHER_PORT_" + envName(e.getKey()), String.valueOf(f.port()));
                env.put("TETHER_URLS_" + envName(e.getKey()), String.join(",", urls));
            }
        }
        return env;
    }

    static List<String> substitute(List<String> argv, String baseUrl, int port, String model) {
        String m = model == null ? "" : model;
        List<String> out = new ArrayList<>(argv.size());
        for (String a : argv) {
            out.add(a.replace("{url}", baseUrl).replace("{port}", String.valueOf(port)).replace("{model}", m));
        }
        return out;
    }

    /** The job's environment for --url: the same variables as for a started server, pointing at the endpoint. */
    private Map<String, String> environment(Endpoint endpoint, String model) {
        Map<String, String> env = new LinkedHashMap<>();
        env.put("OPENAI_BASE_URL", endpoint.base() + "/v1");
        env.put("OPENAI_API_BASE", endpoint.base() + "/v1");
        String key = Endpoint.apiKey(apiKey);
        env.put("OPENAI_API_KEY", key == null ? "tether" : key);
        env.put("TETHER_URL", endpoint.base());
        env.put("TETHER_PORT", String.valueOf(endpoint.port()));
        if (model != null) {
            env.put("TETHER_MODEL", model);
            env.put("TETHER_URL_" + envName(model), endpoint.base());
            env.put("TETHER_PORT_" + envName(model), String.valueOf(endpoint.port()));
        }
        return env;
    }

    /** While the job runs, a server that dies on its own is restarted on its port (within --restarts). */
    private void watch(ServerHandle handle) {
        if (!handle.owned()) {
            return;
        }
        handle.onExit().whenComplete((code, failure) ->
                Thread.ofVirtual().name("exec-restart").start(() -> serverEnded(handle, code)));
    }

    private void serverEnded(ServerHandle handle, Integer code) {
        synchronized (lock) {
            if (jobEnded || signalled != 0) {
                return;
            }
        }
        Lease lease = handle.lease();
        String which = "server " + lease.id() + " (" + ServerManager.describe(lease) + ") on port " + lease.port();
        if (handle.externalStopSummary().isPresent()) {
            say("tether: " + which + " was stopped from outside; not restarted (the job carries on without it)");
            return;
        }
        String how = code == null ? "its shim is gone" : "exit " + code;
        synchronized (lock) {
            if (restartsUsed >= restarts) {
                say("tether: " + which + " died (" + how + "); not restarted: " + restarts + " restarts used");
                return;
            }
            restartsUsed++;
        }
        try {
            handle.restart();
            say("tether: " + which + " died (" + how + "); restarted on the same port (restart " + restartsUsed
                    + " of " + restarts + ")");
            watch(handle);
        } catch (ServerStartException e) {
            say("tether: " + which + " died (" + how + ") and could not be restarted: " + e.getMessage());
        } catch (Exception e) {
            say("tether: " + which + " died (" + how + ") and could not be restarted: " + e.getMessage());
        }
    }

    /**
     * SIGINT/SIGTERM/SIGHUP. Before the job runs: as serve (stop the servers, exit 130/143/129). While it runs:
     * SIGINT goes to the job first (its shim forwards it to the job's group and waits --job-grace), SIGTERM and
     * SIGHUP stop the job's tree; the main thread then stops the servers and exits 130/143/129.
     */
    @SuppressWarnings("removal")
    private void installSignals() {
        for (String name : new String[] {"INT", "TERM", "HUP"}) {
            int code = switch (name) {
                case "INT" -> ExitCode.INTERRUPTED;
                case "HUP" -> 128 + 1;   // the terminal hung up: the job's tree is stopped as for SIGTERM
                default -> ExitCode.TERMINATED;
            };
            sun.misc.Signal.handle(new sun.misc.Signal(name), sig -> {
                Job running;
                boolean first;
                synchronized (lock) {
                    first = signalled == 0;
                    if (first) {
                        signalled = code;
                    }
                    running = jobEnded ? null : job;
                }
                if (running != null) {
                    if (first) {
                        say("tether: SIG" + name + " received: " + (name.equals("INT")
                                ? "passed to the job (it has " + jobGrace.toSeconds() + " s to end), then the servers stop"
                                : "stopping the job, then the servers") + "; exit code " + code);
                    }
                    if (name.equals("INT")) {
                        running.interrupt();   // a second Ctrl-C stops the job at once
                    } else {
                        running.terminate();
                    }
                } else if (first) {
                    say("tether: SIG" + name + " received: stopping servers, then exiting with " + code);
                    // System.exit blocks until the hooks finish: never on the signal dispatcher thread.
                    Thread.ofPlatform().name("tether-exit").start(() -> System.exit(code));
                }
            });
        }
    }

    /** ConsoleEvents, but while the job runs only what needs saying (a restart says one line of its own). */
    private static final class ExecEvents implements ServerEvents {
        private final ServerEvents console;
        volatile boolean quiet;

        ExecEvents(ServerEvents console) {
            this.console = console;
        }

        @Override
        public void starting(Lease lease) {
            if (!quiet) {
                console.starting(lease);
            }
        }

        @Override
        public void ready(Lease lease, String baseUrl, Duration took) {
            if (!quiet) {
                console.ready(lease, baseUrl, took);
            }
        }

        @Override
        public void reusing(Lease lease, String baseUrl) {
            console.reusing(lease, baseUrl);
        }

        @Override
        public void reaped(Lease lease, StopReport report) {
            console.reaped(lease, report);
        }

        @Override
        public void reapedDamaged(LeaseStore.Damaged damaged, StopReport report, Optional<java.nio.file.Path> movedTo) {
            console.reapedDamaged(damaged, report, movedTo);
        }

        @Override
        public void exited(Lease lease, int exitCode) {
            console.exited(lease, exitCode);
        }

        @Override
        public void stopped(Lease lease, String summary) {
            if (!quiet) {
                console.stopped(lease, summary);
            }
        }

        @Override
        public void waiting(String message) {
            console.waiting(message);
        }
    }
}
