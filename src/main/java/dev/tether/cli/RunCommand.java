package dev.tether.cli;

import dev.tether.client.ClientConfig;
import dev.tether.client.OpenAiClient;
import dev.tether.client.ServerStoppedException;
import dev.tether.pipeline.InputException;
import dev.tether.pipeline.Layout;
import dev.tether.pipeline.ResumableOutput;
import dev.tether.pipeline.Role;
import dev.tether.pipeline.ServerSession;
import dev.tether.pipeline.Step;
import dev.tether.pipeline.StepResult;
import dev.tether.pipeline.StepRunner;
import dev.tether.pipeline.Task;
import dev.tether.pipeline.TaskOptions;
import dev.tether.pipeline.Tasks;
import dev.tether.pipeline.Work;
import dev.tether.server.ForeignPortException;
import dev.tether.server.PortInUseException;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.ServerStartException;
import dev.tether.server.TetherHome;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code tether run}: a batch job against servers tether starts and stops itself (DESIGN 1 and 6).
 * Everything is checked before any server starts: task, step, N, files, output directory.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Run a batch job (--task): the HalluLens tasks precisewikiqa, triviaqa and mixedentities, prompts (any JSONL) "
                + "or batch (OpenAI Batch API JSONL).",
                "Starts the servers it needs, keeps them busy, and stops them (whole tree, port free) when it ends.",
                "Re-running the same command resumes: finished records are kept and skipped."})
final class RunCommand implements Callable<Integer> {
    @Mixin
    ServerOptions server;

    @Mixin
    ReplicaOptions pool;

    @CommandLine.Parameters(paramLabel = "SERVER-ARGS", arity = "0..*",
            description = "After --: more arguments for the server's argv (e.g. -- --max-model-len 4096).")
    List<String> serverArgs;

    @Option(names = "--task", required = true, paramLabel = "TASK", completionCandidates = Tasks.Names.class,
            description = "One of: ${COMPLETION-CANDIDATES} (README, \"Tasks\").")
    String taskName;

    /** Resolved in checkOptions(). */
    Task task;

    /** Resolved in checkOptions(): the steps --step names, in order. */
    List<String> stepNames;

    /** Resolved in checkOptions(): what the task reads. */
    TaskOptions options;

    @Option(names = "--step", paramLabel = "STEP", defaultValue = "all",
            description = "The task's step, or all of them in order (default: ${DEFAULT-VALUE}): precisewikiqa and "
                    + "mixedentities generate, inference, eval; triviaqa inference, eval; prompts and batch have one step.")
    String step;

    @Option(names = "--N", paramLabel = "n", defaultValue = "100", description = "Questions (precisewikiqa, triviaqa), or made-up names per type (mixedentities) (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--q-generator", paramLabel = "M", description = "Model that writes the questions (default: --model).")
    String qGenerator;

    @Option(names = "--judge", paramLabel = "M", description = "Model that judges the answers (default: --model).")
    String judge;

    @Option(names = "--output-dir", paramLabel = "DIR",
            description = "Where results go (default: output; with --layout hallulens the working directory, a HalluLens checkout).")
    Path outputDir;

    @Option(names = "--layout", paramLabel = "LAYOUT", defaultValue = "tether",
            description = "precisewikiqa, triviaqa, mixedentities: tether (OUT/precise_qa, OUT/precisewikiqa/<model>, ...) or hallulens (the original's paths "
                    + "data/precise_qa/save/... and output/precise_wikiqa_goodwiki_dynamic/<model>/..., and its key names in "
                    + "eval_results.json) (default: ${DEFAULT-VALUE}).")
    String layoutName;

    @Option(names = "--concurrency", paramLabel = "C",
            description = "Requests in flight per server (so C x N with --replicas N) at most (default: 64, which suits vLLM; "
                    + "for the embedded engine its slot count, 4 or --parallel).")
    Integer concurrencyOption;

    /** Resolved in checkOptions(): the option (or the default for the server kind) times the replicas. */
    int concurrency;

    /** The id the replicas of this run share in their leases (ps groups them). */
    final String group = ReplicaOptions.newGroup();

    @Option(names = "--no-resume", description = "Start over instead of continuing an earlier run (old files are kept as .bak).")
    boolean noResume;

    @Option(names = "--input", paramLabel = "FILE.jsonl", description = "prompts: one JSON object per line with prompt or messages; batch: OpenAI Batch API lines (custom_id, method, url, body).")
    Path input;

    @Option(names = "--output", paramLabel = "FILE.jsonl", description = "prompts, batch: where the results go (default: OUTPUT-DIR/prompts/<model>/generations.jsonl, OUTPUT-DIR/batch/<model>/results.jsonl).")
    Path output;

    @Option(names = "--max-tokens", paramLabel = "n",
            description = "Tokens per answer (default: 128; triviaqa and mixedentities: 256, as the original runner).")
    Integer maxTokensOption;

    /** Resolved in checkOptions(): the option, or the task's default. */
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "prompts, batch: sampling temperature unless a line sets its own (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "generate: makes document and section sampling (precisewikiqa) or the made-up names (mixedentities) reproducible (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--wiki-file", paramLabel = "FILE", description = "generate: wiki documents (default: the sample that ships with tether).")
    Path wikiFile;

    @Option(names = "--data", paramLabel = "FILE", description = "triviaqa: the questions (TriviaQA JSON, default: the sample that ships with tether).")
    Path data;

    @Option(names = "--entities-dir", paramLabel = "DIR",
            description = "mixedentities: real names to mix, one file per type (animal.txt, plant.txt, bacteria.txt, medicine.txt; "
                    + "default: the lists that ship with tether).")
    Path entitiesDir;

    @Option(names = "--restarts", paramLabel = "n", defaultValue = "3", description = "How often a server that dies mid-run is restarted (default: ${DEFAULT-VALUE}).")
    int restarts;

    @Option(names = "--request-timeout", paramLabel = "DURATION", defaultValue = "10m", converter = DurationConverter.class,
            description = "Per request attempt (default: ${DEFAULT-VALUE}).")
    Duration requestTimeout;

    @Option(names = "--hang-timeout", paramLabel = "DURATION", converter = DurationConverter.class,
            description = "With requests in flight and none answered for this long, check the server's health; if it does not "
                    + "answer either, the server hangs and is restarted (default: the profile's hang-timeout, else 120s).")
    Duration hangTimeout;

    @Option(names = "--retries", paramLabel = "n", defaultValue = "5", description = "Retries per request for 429, 5xx, timeouts and connection errors (default: ${DEFAULT-VALUE}).")
    int retries;

    @Option(names = "--url", paramLabel = "URL",
            description = "Use an existing OpenAI-compatible server at URL (its base, http://host:8000 or http://host:8000/v1: "
                    + "both mean the same) instead of starting one: tether starts, restarts and stops nothing. "
                    + "Server options (--profile, --command, --port, --host, --health, --startup-timeout, --grace, --restarts, "
                    + "--hang-timeout) are refused with it.")
    String url;

    @Option(names = "--api-key", paramLabel = "KEY",
            description = "Sent as 'Authorization: Bearer KEY' with every request (default: OPENAI_API_KEY when set; never printed).")
    String apiKey;

    /** Resolved in checkOptions() from --url; null when tether starts the servers. */
    Endpoint endpoint;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TetherCommand.requireLinux();
        PrintWriter out = spec.commandLine().getOut();
        PrintStream err = System.err;
        checkOptions();
        TetherHome home = TetherHome.fromEnvironment();
        List<Step> steps;
        Duration profileHang = null;
        try {
            steps = task.plan(options, stepNames);
            // Resolve every server spec now: a bad profile or missing executable is exit 2 before anything starts.
            for (Step s : endpoint != null ? List.<Step>of() : steps) {
                if (s.role() != Role.NONE) {
                    ServerSpec stepSpec = server.toSpec(home, options.modelFor(s.role()));
                    pool.place(stepSpec, group);   // too few GPUs for the replicas: exit 2 now
                    Duration h = stepSpec.profile().hangTimeout();
                    profileHang = profileHang != null ? profileHang : h;
                }
            }
        } catch (InputException e) {
            throw CliError.usage(e.getMessage());
        }
        Duration hang = hangTimeout != null ? hangTimeout : profileHang != null ? profileHang : ClientConfig.DEFAULT_HANG_TIMEOUT;
        if (steps.stream().anyMatch(s -> s.role() != Role.NONE && "tiny".equals(options.modelFor(s.role())))) {
            out.println("Note: model 'tiny' has random weights; its questions, answers and verdicts are meaningless text "
                    + "(it exists to exercise the pipeline offline). Use --model /path/to/model.gguf or --profile vllm for real results.");
        }

        Interrupts.install(spec.commandLine().getErr());
        if (endpoint != null) {
            out.println(endpoint.usingLine());
        }
        List<StepResult> results = new ArrayList<>();
        // With --url there is no manager and no session (null resources are skipped): nothing to start or stop.
        try (ServerManager manager = endpoint != null ? null : new ServerManager(home, new ConsoleEvents(out));
             ServerSession session = endpoint != null ? null
                     : new ServerSession(manager, pool.replicas, m -> pool.place(server.toSpec(home, m), group), restarts);
             OpenAiClient client = new OpenAiClient((endpoint != null
                     ? ClientConfig.of(endpoint.base()).withRecovery(Endpoint.neverRestarts()) : ClientConfig.of(session))
                     .withMaxConcurrency(concurrency)
                     .withRequestTimeout(requestTimeout)
                     .withMaxRetries(retries)
                     .withApiKey(Endpoint.apiKey(apiKey))
                     .withHangTimeout(hang))) {
            StepRunner runner = new StepRunner(client, concurrency, !noResume, err);
            for (Step step : steps) {
                // Each step finds out from its files whether it has anything left to send before a server starts
                // (for --step all, after the step before it has written its output).
                Work work = step.left();
                if (work.nothingLeft()) {
                    out.println(work.nothingToDo());
                } else {
                    if (session != null && step.role() != Role.NONE) {
                        serve(session, options.modelFor(step.role()));
                    }
                    step.starting();
                }
                out.flush();
                StepResult result = step.run(runner);
                results.add(result);
                out.println(result.summary());
                result.report().forEach(out::println);
                out.flush();
            }
        } catch (InputException e) {
            throw CliError.usage(e.getMessage());
        } catch (ServerStoppedException e) {
            // Stopped on purpose from outside: the run ends (exit 1) with who did it; the work left is not
            // written as failures, so a re-run resumes it.
            throw new CliError(ExitCode.JOB_FAILED, e.getMessage(), e);
        } catch (ResumableOutput.WriteFailed e) {
            // A full disk (or another write error) after the job started: the job failed (exit 1), and the output
            // holds only complete records, so freeing space and re-running resumes where it stopped.
            throw new CliError(ExitCode.JOB_FAILED, e.getMessage() + "; free some space (or fix the disk) and re-run the same "
                    + "command: it resumes after the last complete record", e);
        }
        return finish(out, results);
    }

    /** The closing lines and the exit code: 0 when every record succeeded and the results are usable, else 1. */
    private int finish(PrintWriter out, List<StepResult> results) {
        long failures = results.stream().mapToLong(StepResult::failures).sum();
        List<String> problems = results.stream().map(StepResult::problem).filter(java.util.Objects::nonNull).toList();
        if (failures == 0 && !problems.isEmpty()) {
            out.println("Done, but the results are not usable (see the line on stderr).");
            out.flush();
            PrintWriter errLine = spec.commandLine().getErr();
            errLine.println("tether: " + String.join("; ", problems));
            errLine.flush();
            return ExitCode.JOB_FAILED;
        }
        if (failures > 0) {
            out.println("Done with " + failures + " failed records (kept as failure records; re-run the same command to retry them).");
            out.flush();
            // Exit 1 gets its one line on stderr too, like every other failure: how many, where, what to do.
            String where = results.stream().filter(r -> r.failures() > 0)
                    .map(r -> r.step() + ": " + r.failures() + " of " + r.records() + " in " + r.output())
                    .collect(java.util.stream.Collectors.joining("; "));
            String keyHint = endpoint == null ? null : Endpoint.keyHint(results.stream().filter(r -> r.failures() > 0)
                    .map(StepResult::output).toList(), Endpoint.apiKey(apiKey) != null);
            if (keyHint != null) {
                problems = new ArrayList<>(problems);
                problems.addFirst(keyHint);
            }
            PrintWriter errLine = spec.commandLine().getErr();
            errLine.println("tether: " + failures + (failures == 1 ? " record" : " records") + " failed (" + where
                    + "; each failure record's \"error\" says why); re-run the same command to retry them"
                    + (problems.isEmpty() ? "" : "; " + String.join("; ", problems)));
            errLine.flush();
            return ExitCode.JOB_FAILED;
        }
        out.println("Done.");
        return ExitCode.OK;
    }

    private void serve(ServerSession session, String model) {
        try {
            session.serve(model);
        } catch (ServerStartException e) {
            String tail = e.logTail().isBlank() ? "" : "\n--- last lines of the server log ---\n" + e.logTail() + "\n---";
            String which = pool.replicas == 1 ? "the server for " + model + " failed to start: "
                    : "none of the " + pool.replicas + " replicas for " + model + " started; replica 1 of " + pool.replicas + ": ";
            throw new CliError(ExitCode.SERVER_FAILED, which + e.getMessage() + tail);
        } catch (ForeignPortException | PortInUseException e) {
            throw new CliError(ExitCode.PORT_HELD, e.getMessage());
        }
    }

    private void checkOptions() {
        server.takeTrailingArgs(serverArgs, spec);
        task = Tasks.find(taskName).orElseThrow(() -> CliError.usage("unknown task '" + taskName + "' (known: "
                + String.join(", ", Tasks.names()) + ")"));
        List<String> known = new ArrayList<>(task.steps());
        known.add("all");
        if (!known.contains(step)) {
            throw CliError.usage("unknown step '" + step + "' for --task " + taskName + " (known: " + String.join(", ", known) + ")");
        }
        stepNames = step.equals("all") ? task.steps() : List.of(step);
        Layout layout = Layout.parse(layoutName);
        if (layout == null) {
            throw CliError.usage("unknown layout '" + layoutName + "' (known: tether, hallulens)");
        }
        if (outputDir == null) {
            outputDir = Path.of(layout == Layout.HALLULENS ? "." : "output");
        }
        if (server.model == null || server.model.isBlank()) {
            throw CliError.usage("--model is required (for example --model tiny, or a path to a .gguf file)");
        }
        if (url != null) {
            Endpoint.refuse(spec, "--profile", "--command", "--port", "--host", "--health", "--startup-timeout", "--grace",
                    "--restarts", "--hang-timeout", "--replicas", "--gpus-per-replica", "--gpus");
            server.refuseWithUrl(spec);
            endpoint = Endpoint.parse(url);
        }
        if (n <= 0) {
            throw CliError.usage("--N must be a positive number, not " + n);
        }
        boolean embedded = endpoint == null && ("embedded".equals(server.profile)
                || (server.profile == null && server.command == null
                    && ("tiny".equals(server.model) || server.model.endsWith(".gguf"))));
        // The embedded engine decodes 4 requests at once (or --parallel); more in flight only queue (and on 2 cores, slow it down).
        concurrency = concurrencyOption != null ? concurrencyOption
                : embedded ? (server.parallel != null ? server.parallel : 4) : 64;
        if (concurrency <= 0) {
            throw CliError.usage("--concurrency must be at least 1, not " + concurrency);
        }
        pool.check(spec, spec.commandLine().getParseResult().hasMatchedOption("--port"), server.port);
        concurrency *= pool.replicas;   // per server: N replicas keep N times as many requests in flight
        maxTokens = maxTokensOption != null ? maxTokensOption : task.defaultMaxTokens();
        if (maxTokens <= 0) {
            throw CliError.usage("--max-tokens must be at least 1, not " + maxTokens);
        }
        if (hangTimeout != null && hangTimeout.isZero()) {
            throw CliError.usage("--hang-timeout must be more than 0 (for example 120s)");
        }
        if (restarts < 0 || retries < 0) {
            throw CliError.usage("--restarts and --retries cannot be negative");
        }
        String model = server.model;
        options = new TaskOptions(model, qGenerator != null ? qGenerator : model, judge != null ? judge : model, n, outputDir,
                layout, input, output, data, entitiesDir, wikiFile, maxTokens, temperature, seed, !noResume, concurrency,
                System.err);
        try {
            task.checkOptions(options);
        } catch (InputException e) {
            throw CliError.usage(e.getMessage());
        }
    }
}
