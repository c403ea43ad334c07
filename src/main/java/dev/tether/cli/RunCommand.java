package dev.tether.cli;

import dev.tether.client.ClientConfig;
import dev.tether.client.OpenAiClient;
import dev.tether.client.ServerStoppedException;
import dev.tether.pipeline.InputException;
import dev.tether.pipeline.PromptsTask;
import dev.tether.pipeline.ResumableOutput;
import dev.tether.pipeline.ServerSession;
import dev.tether.pipeline.StepResult;
import dev.tether.pipeline.Work;
import dev.tether.pipeline.precisewikiqa.PreciseWikiQa;
import dev.tether.pipeline.precisewikiqa.WikiDocs;
import dev.tether.server.ForeignPortException;
import dev.tether.server.PortInUseException;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.ServerStartException;
import dev.tether.server.TetherHome;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
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
        description = {"Run a batch job: precisewikiqa (generate -> inference -> eval) or prompts (any JSONL).",
                "Starts the servers it needs, keeps them busy, and stops them (whole tree, port free) when it ends.",
                "Re-running the same command resumes: finished records are kept and skipped."})
final class RunCommand implements Callable<Integer> {
    static final List<String> STEPS = List.of("generate", "inference", "eval", "all");

    @Mixin
    ServerOptions server;

    @Mixin
    ReplicaOptions pool;

    @CommandLine.Parameters(paramLabel = "SERVER-ARGS", arity = "0..*",
            description = "After --: more arguments for the server's argv (e.g. -- --max-model-len 4096).")
    List<String> serverArgs;

    @Option(names = "--task", required = true, paramLabel = "TASK", description = "precisewikiqa or prompts.")
    String task;

    @Option(names = "--step", paramLabel = "STEP", defaultValue = "all",
            description = "precisewikiqa step: generate, inference, eval or all (default: ${DEFAULT-VALUE}).")
    String step;

    @Option(names = "--N", paramLabel = "n", defaultValue = "100", description = "Number of questions (default: ${DEFAULT-VALUE}).")
    int n;

    @Option(names = "--q-generator", paramLabel = "M", description = "Model that writes the questions (default: --model).")
    String qGenerator;

    @Option(names = "--judge", paramLabel = "M", description = "Model that judges the answers (default: --model).")
    String judge;

    @Option(names = "--output-dir", paramLabel = "DIR",
            description = "Where results go (default: output; with --layout hallulens the working directory, a HalluLens checkout).")
    Path outputDir;

    @Option(names = "--layout", paramLabel = "LAYOUT", defaultValue = "tether",
            description = "precisewikiqa: tether (OUT/precise_qa, OUT/precisewikiqa/<model>) or hallulens (the original's paths "
                    + "data/precise_qa/save/... and output/precise_wikiqa_goodwiki_dynamic/<model>/..., and its key names in "
                    + "eval_results.json) (default: ${DEFAULT-VALUE}).")
    String layoutName;

    /** Resolved in checkOptions(). */
    PreciseWikiQa.Layout layout;

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

    @Option(names = "--input", paramLabel = "FILE.jsonl", description = "prompts: one JSON object per line with prompt or messages.")
    Path input;

    @Option(names = "--output", paramLabel = "FILE.jsonl", description = "prompts: where generations go (default: OUTPUT-DIR/prompts/<model>/generations.jsonl).")
    Path output;

    @Option(names = "--max-tokens", paramLabel = "n", defaultValue = "128", description = "Tokens per answer (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "prompts: sampling temperature unless a line sets its own (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "generate: makes document and section sampling reproducible (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--wiki-file", paramLabel = "FILE", description = "generate: wiki documents (default: the sample that ships with tether).")
    Path wikiFile;

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
        // Resolve every server spec now: a bad profile or missing executable is exit 2 before anything starts.
        String model = server.model;
        String qGen = qGenerator != null ? qGenerator : model;
        String judgeModel = judge != null ? judge : model;
        List<String> steps = task.equals("prompts") ? List.of("prompts")
                : step.equals("all") ? List.of("generate", "inference", "eval") : List.of(step);
        Duration profileHang = null;
        for (String s : endpoint != null ? List.<String>of() : steps) {
            ServerSpec stepSpec = server.toSpec(home, modelFor(s, model, qGen, judgeModel));
            pool.place(stepSpec, group);   // too few GPUs for the replicas: exit 2 now
            Duration h = stepSpec.profile().hangTimeout();
            profileHang = profileHang != null ? profileHang : h;
        }
        Duration hang = hangTimeout != null ? hangTimeout : profileHang != null ? profileHang : ClientConfig.DEFAULT_HANG_TIMEOUT;
        long promptCount = 0;
        List<WikiDocs.Doc> docs = null;
        try {
            if (!task.equals("prompts") || output == null) {
                prepareOutputDir();   // prompts with --output writes nothing under --output-dir: no stray output/
            }
            if (task.equals("prompts")) {
                promptCount = PromptsTask.validate(input);
                checkOutputFile(promptsOutput(model));
            }
            if (steps.contains("generate")) {
                Path original = outputDir.resolve("data/wiki_data").resolve(WikiDocs.FILE_NAME);
                if (wikiFile == null && layout == PreciseWikiQa.Layout.HALLULENS && Files.isRegularFile(original)) {
                    wikiFile = original;   // a HalluLens checkout's own documents (its download script puts them there)
                }
                docs = wikiFile != null ? WikiDocs.load(wikiFile) : WikiDocs.loadSample();
            }
            if (steps.getFirst().equals("inference") && !Files.isRegularFile(PreciseWikiQa.questionsFile(layout, outputDir, qGen))) {
                throw new InputException("questions file not found: " + PreciseWikiQa.questionsFile(layout, outputDir, qGen)
                        + " (run --step generate first, with the same --q-generator and --output-dir)");
            }
            if (steps.getFirst().equals("inference")) {
                // Too few usable questions (a malformed file, a smaller --N earlier) is an input error: say so before a server starts.
                PreciseWikiQa.questions(PreciseWikiQa.questionsFile(layout, outputDir, qGen), n);
            }
            if (steps.getFirst().equals("eval")
                    && !Files.isRegularFile(PreciseWikiQa.modelDir(layout, outputDir, model).resolve("generation.jsonl"))) {
                throw new InputException("generations not found: " + PreciseWikiQa.modelDir(layout, outputDir, model).resolve("generation.jsonl")
                        + " (run --step inference first, with the same --model and --output-dir)");
            }
            // A resume must not mix models or settings in one file: refused here, before any server starts.
            if (task.equals("prompts")) {
                promptsOptions(model).checkResume();
            } else {
                PreciseWikiQa.Context unstarted = new PreciseWikiQa.Context(outputDir, null, concurrency, !noResume, seed,
                        maxTokens, err, layout);
                for (String s : steps) {
                    PreciseWikiQa.checkResume(unstarted, s, model, qGen, judgeModel);
                }
            }
        } catch (InputException e) {
            throw CliError.usage(e.getMessage());
        }
        if (steps.stream().anyMatch(s -> "tiny".equals(modelFor(s, model, qGen, judgeModel)))) {
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
            PreciseWikiQa.Context context = new PreciseWikiQa.Context(outputDir, client, concurrency, !noResume, seed,
                    maxTokens, err, layout);
            for (String s : steps) {
                String stepModel = modelFor(s, model, qGen, judgeModel);
                PromptsTask.Options prompts = promptsOptions(model);
                // Each step finds out from its files whether it has anything left to send before a server starts
                // (for --step all, after the step before it has written its output).
                Work work = switch (s) {
                    case "prompts" -> PromptsTask.work(prompts, promptCount);
                    case "generate" -> PreciseWikiQa.generateWork(context, qGen, docs, n);
                    case "inference" -> PreciseWikiQa.inferenceWork(context, model, qGen, n);
                    case "eval" -> PreciseWikiQa.evalWork(context, model, n);
                    default -> throw new IllegalStateException(s);
                };
                if (work.nothingLeft()) {
                    out.println(work.nothingToDo());
                } else {
                    if (session != null) {
                        serve(session, stepModel);
                    }
                    if (s.equals("generate") && wikiFile == null) {
                        WikiDocs.sample(outputDir.resolve("data"));   // the run's input, where a user can see it
                    }
                }
                out.flush();
                StepResult result = switch (s) {
                    case "prompts" -> PromptsTask.run(prompts, client, promptCount, err);
                    case "generate" -> PreciseWikiQa.generate(context, qGen, docs, n);
                    case "inference" -> PreciseWikiQa.inference(context, model, qGen, n);
                    case "eval" -> PreciseWikiQa.eval(context, model, judgeModel, n);
                    default -> throw new IllegalStateException(s);
                };
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

    private static String modelFor(String step, String model, String qGen, String judgeModel) {
        return switch (step) {
            case "generate" -> qGen;
            case "eval" -> judgeModel;
            default -> model;
        };
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

    private PromptsTask.Options promptsOptions(String model) {
        return new PromptsTask.Options(input, promptsOutput(model), model, maxTokens, temperature, !noResume, concurrency);
    }

    private Path promptsOutput(String model) {
        return output != null ? output
                : outputDir.resolve("prompts").resolve(PreciseWikiQa.modelName(model)).resolve("generations.jsonl");
    }

    private void checkOptions() {
        server.takeTrailingArgs(serverArgs, spec);
        if (!task.equals("precisewikiqa") && !task.equals("prompts")) {
            throw CliError.usage("unknown task '" + task + "' (known: precisewikiqa, prompts)");
        }
        if (!STEPS.contains(step)) {
            throw CliError.usage("unknown step '" + step + "' (known: " + String.join(", ", STEPS) + ")");
        }
        layout = PreciseWikiQa.Layout.parse(layoutName);
        if (layout == null) {
            throw CliError.usage("unknown layout '" + layoutName + "' (known: tether, hallulens)");
        }
        if (outputDir == null) {
            outputDir = Path.of(layout == PreciseWikiQa.Layout.HALLULENS ? "." : "output");
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
        if (maxTokens <= 0) {
            throw CliError.usage("--max-tokens must be at least 1, not " + maxTokens);
        }
        if (hangTimeout != null && hangTimeout.isZero()) {
            throw CliError.usage("--hang-timeout must be more than 0 (for example 120s)");
        }
        if (restarts < 0 || retries < 0) {
            throw CliError.usage("--restarts and --retries cannot be negative");
        }
        if (task.equals("prompts") && input == null) {
            throw CliError.usage("--task prompts needs --input FILE.jsonl");
        }
        if (task.equals("precisewikiqa") && input != null) {
            throw CliError.usage("--input is for --task prompts; precisewikiqa reads --wiki-file");
        }
    }

    /** The prompts output file must be writable before a server starts (not a directory, its directory writable). */
    private static void checkOutputFile(Path file) throws InputException {
        if (Files.isDirectory(file)) {
            throw new InputException("output " + file + " is a directory; give a file path with --output");
        }
        Path parent = file.toAbsolutePath().getParent();
        try {
            Files.createDirectories(parent);
            Path probe = Files.createTempFile(parent, ".tether-write-check", ".tmp");
            Files.delete(probe);
        } catch (IOException | SecurityException e) {
            throw new InputException("output " + file + " cannot be written: its directory " + parent + " is not writable ("
                    + why(e) + "); choose another with --output");
        }
        if (Files.exists(file) && !Files.isWritable(file)) {
            throw new InputException("output " + file + " is not writable; choose another with --output");
        }
    }

    /** The output directory must be creatable and writable before a server starts. */
    private void prepareOutputDir() throws InputException {
        try {
            Files.createDirectories(outputDir);
            Path probe = Files.createTempFile(outputDir, ".tether-write-check", ".tmp");
            Files.delete(probe);
        } catch (IOException | SecurityException e) {
            throw new InputException("output directory " + outputDir + " is not writable (" + why(e)
                    + "); choose another with --output-dir");
        }
    }

    /** The OS's reason (Java's file exceptions often carry only the path as their message). */
    private static String why(Exception e) {
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        return switch (e) {
            case java.nio.file.NoSuchFileException n -> "cannot be created there";
            case java.nio.file.FileAlreadyExistsException x -> "a file is in the way: " + x.getFile();
            case java.nio.file.AccessDeniedException x -> "permission denied";
            default -> e.getMessage();
        };
    }
}
