package dev.tether.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.client.ClientException;
import dev.tether.client.CompletionRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code --task prompts}: any JSONL of prompts → one generation per line (DESIGN 6).
 *
 * <p>Input lines: {@code {"prompt": "..."}} or {@code {"messages": [{"role", "content"}...]}}, with an
 * optional {@code id} (string or number, unique) and optional {@code max_tokens}, {@code temperature},
 * {@code top_p}, {@code stop}, {@code seed}. Output lines: the input fields, plus {@code line} (its line
 * number, when it has no id), {@code generation}, {@code finish_reason}, {@code usage} and {@code produced_by} — or
 * {@code generation: null} and an {@code error} when it failed after all retries.
 */
public final class PromptsTask implements Task {
    public record Options(Path input, Path output, String model, int maxTokens, double temperature, boolean resume,
                          int concurrency) {
        /** The run's settings, in every output record (a line's own max_tokens or temperature is in the record). */
        public ProducedBy producedBy() {
            return new ProducedBy().with("model", model, "--model").with("max_tokens", maxTokens, "--max-tokens")
                    .with("temperature", temperature, "--temperature");
        }

        /** Refuses to resume into an output made by another model or with other settings (before a server starts). */
        public void checkResume() throws InputException {
            if (resume) {
                producedBy().check("prompts", output, "--output");
            }
        }
    }

    PromptsTask() {}

    /** Reads the whole input once before anything is sent: every bad line is reported as file:line. */
    public static long validate(Path input) throws InputException {
        if (Files.isDirectory(input)) {
            throw new InputException("input " + input + " is a directory; give a JSONL file (one JSON object per line)");
        }
        if (!Files.isRegularFile(input)) {
            throw new InputException("input file not found: " + input);
        }
        if (!Files.isReadable(input)) {
            throw new InputException("input file is not readable: " + input);
        }
        String firstProblem = null;
        long badLines = 0;
        long count = 0;
        long[] idHashes = new long[1024];
        int ids = 0;
        for (Jsonl.Line line : Jsonl.read(input)) {
            count++;
            String problem = line.ok() ? check(line.object()) : line.error();
            if (problem != null) {
                if (firstProblem == null) {
                    firstProblem = input + ":" + line.number() + ": " + problem;
                }
                badLines++;
                continue;
            }
            JsonNode id = line.object().get("id");
            if (id != null) {
                if (ids == idHashes.length) {
                    idHashes = Arrays.copyOf(idHashes, ids * 2);
                }
                idHashes[ids++] = DoneKeys.hash(id.asText());
            }
        }
        if (firstProblem != null) {
            throw new InputException(firstProblem + (badLines > 1 ? " (and " + (badLines - 1) + " more bad lines)" : "")
                    + "; each line must be a JSON object with \"prompt\" (string) or \"messages\" (array of {role, content})");
        }
        if (count == 0) {
            throw new InputException("input file has no prompts: " + input);
        }
        Arrays.sort(idHashes, 0, ids);
        for (int i = 1; i < ids; i++) {
            if (idHashes[i] == idHashes[i - 1]) {
                throw duplicate(input, idHashes[i]);
            }
        }
        return count;
    }

    /** The error for a duplicate id (known by its hash): a second pass finds the two lines that carry it. */
    private static InputException duplicate(Path input, long hash) {
        int first = -1;
        for (Jsonl.Line line : Jsonl.read(input)) {
            JsonNode id = line.ok() ? line.object().get("id") : null;
            if (id != null && DoneKeys.hash(id.asText()) == hash) {
                if (first < 0) {
                    first = line.number();
                } else {
                    return new InputException(input + ":" + line.number() + ": the same \"id\" " + id + " as line " + first
                            + "; ids must be unique (they key the resume)");
                }
            }
        }
        return new InputException(input + ": two lines have the same \"id\"; ids must be unique (they key the resume)");
    }

    static String check(ObjectNode o) {
        JsonNode prompt = o.get("prompt");
        JsonNode messages = o.get("messages");
        if (prompt == null && messages == null) {
            return "no \"prompt\" or \"messages\"";
        }
        if (prompt != null && messages != null) {
            return "both \"prompt\" and \"messages\"; give one";
        }
        if (prompt != null && !prompt.isTextual()) {
            return "\"prompt\" must be a string";
        }
        if (messages != null) {
            if (!messages.isArray() || messages.isEmpty()) {
                return "\"messages\" must be a non-empty array";
            }
            for (JsonNode m : messages) {
                if (!m.isObject() || !m.path("role").isTextual() || !m.path("content").isTextual()) {
                    return "each message needs string \"role\" and \"content\"";
                }
            }
        }
        JsonNode id = o.get("id");
        if (id != null && !id.isTextual() && !id.isIntegralNumber()) {
            return "\"id\" must be a string or an integer";
        }
        for (String field : List.of("max_tokens", "seed")) {
            if (o.has(field) && !o.get(field).isIntegralNumber()) {
                return "\"" + field + "\" must be an integer";
            }
        }
        for (String field : List.of("temperature", "top_p")) {
            if (o.has(field) && !o.get(field).isNumber()) {
                return "\"" + field + "\" must be a number";
            }
        }
        if (o.has("stop") && !o.get("stop").isTextual() && !o.get("stop").isArray()) {
            return "\"stop\" must be a string or an array of strings";
        }
        return null;
    }

    static String key(ObjectNode record, int lineNumber) {
        JsonNode id = record.get("id");
        return id != null ? "id:" + id.asText() : "line:" + lineNumber;
    }

    /** The key of an output record: its id, else the input line it came from. */
    private static String outputKey(ObjectNode r) {
        return r.has("id") ? "id:" + r.get("id").asText() : r.has("line") ? "line:" + r.get("line").asInt() : null;
    }

    /**
     * How many of the (already validated) input's prompts have no successful record in the output yet, found by
     * streaming both files before any server starts; the output is not changed.
     */
    public static Work work(Options options, long total) throws java.io.IOException {
        if (!options.resume() || !Files.exists(options.output())) {
            return Work.some("prompts");
        }
        ResumableOutput.Finished finished = ResumableOutput.finished(options.output(), PromptsTask::outputKey);
        long left = finished.torn() ? 1 : 0;
        for (Jsonl.Line line : Jsonl.read(options.input())) {
            if (!line.ok() || !finished.keys().contains(key(line.object(), line.number()))) {
                left++;
            }
        }
        return new Work("prompts", left, "all " + total + " records already in " + options.output());
    }

    /** The work of one prompt: the input line's fields plus its generation. */
    private record PromptWork(Options options, ProducedBy producedBy) implements StepRunner.RecordWork<Jsonl.Line> {
        @Override
        public String key(Jsonl.Line line) {
            return PromptsTask.key(line.object(), line.number());
        }

        private ObjectNode base(Jsonl.Line line) {
            ObjectNode record = line.object().deepCopy();
            if (!record.has("id")) {
                record.put("line", line.number());
            }
            producedBy.stamp(record);
            return record;
        }

        @Override
        public ObjectNode failure(Jsonl.Line line, ClientException e) {
            return Requests.putFailure(base(line), "generation", e);
        }

        @Override
        public ObjectNode record(Jsonl.Line line, StepRunner.Calls calls) throws ClientException, InterruptedException {
            ObjectNode record = base(line);
            Requests.putResult(record, "generation", calls.complete(request(options, line.object())));
            return record;
        }
    }

    public static StepResult run(Options options, StepRunner runner, long total) throws Exception {
        StepRunner.Run run = runner.start("prompts");
        StepRunner.Pass pass = run.pass("prompts", options.output(), PromptsTask::outputKey, total,
                Jsonl.read(options.input()).iterator(), new PromptWork(options, options.producedBy()),
                options.concurrency() * 2, null);
        // Written as answers came back: the output is rewritten in the input's order when the step ends.
        InputLines lines = InputLines.of(options.input(), line -> line.ok() && line.object().has("id")
                ? key(line.object(), line.number()) : null);
        InOrder.sort(options.output(), r -> r.has("line") && r.get("line").canConvertToLong() ? r.get("line").asLong()
                : r.has("id") ? lines.lineOf("id:" + r.get("id").asText()) : Long.MAX_VALUE);
        return run.result(pass.resumed() + pass.written(), pass.resumed(), options.output().toString());
    }

    // ---------------------------------------------------------------- as a task

    @Override
    public String name() {
        return "prompts";
    }

    @Override
    public String summary() {
        return "any JSONL of prompts (--input) -> one generation per line";
    }

    @Override
    public List<String> steps() {
        return List.of("prompts");
    }

    @Override
    public void checkOptions(TaskOptions o) throws InputException {
        if (o.input() == null) {
            throw new InputException("--task prompts needs --input FILE.jsonl");
        }
    }

    /** Where generations go: --output, else OUTPUT-DIR/prompts/<model>/generations.jsonl. */
    static Path output(TaskOptions o) {
        return o.output() != null ? o.output()
                : o.outputDir().resolve("prompts").resolve(TaskOptions.modelName(o.model())).resolve("generations.jsonl");
    }

    @Override
    public List<Step> plan(TaskOptions o, List<String> stepNames) throws Exception {
        if (o.output() == null) {
            o.prepareOutputDir();   // with --output nothing is written under --output-dir: no stray output/
        }
        long total = validate(o.input());
        Options options = new Options(o.input(), output(o), o.model(), o.maxTokens(), o.temperature(), o.resume(),
                o.concurrency());
        TaskOptions.checkOutputFile(options.output());
        TaskOptions.checkNotInput(o.input(), options.output());
        // A resume must not mix models or settings in one file: refused here, before any server starts.
        options.checkResume();
        return List.of(Step.of("prompts", Role.MODEL, () -> work(options, total), runner -> run(options, runner, total)));
    }

    private static CompletionRequest request(Options options, ObjectNode line) {
        List<String> stop = new ArrayList<>();
        JsonNode s = line.get("stop");
        if (s != null && s.isTextual()) {
            stop.add(s.asText());
        } else if (s != null) {
            s.forEach(x -> stop.add(x.asText()));
        }
        List<CompletionRequest.Message> messages = null;
        if (line.has("messages")) {
            messages = new ArrayList<>();
            for (JsonNode m : line.get("messages")) {
                messages.add(new CompletionRequest.Message(m.get("role").asText(), m.get("content").asText()));
            }
        }
        return Requests.request(options.model(), line.has("prompt") ? line.get("prompt").asText() : null, messages,
                line.path("max_tokens").asInt(options.maxTokens()),
                line.path("temperature").asDouble(options.temperature()),
                line.path("top_p").asDouble(1.0), stop,
                line.has("seed") ? line.get("seed").asInt() : null);
    }
}
