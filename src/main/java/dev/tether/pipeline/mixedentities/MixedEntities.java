package dev.tether.pipeline.mixedentities;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.client.ClientException;
import dev.tether.pipeline.InputException;
import dev.tether.pipeline.Jsonl;
import dev.tether.pipeline.Layout;
import dev.tether.pipeline.ProducedBy;
import dev.tether.pipeline.Requests;
import dev.tether.pipeline.ResumableOutput;
import dev.tether.pipeline.Role;
import dev.tether.pipeline.Step;
import dev.tether.pipeline.StepResult;
import dev.tether.pipeline.StepRunner;
import dev.tether.pipeline.Task;
import dev.tether.pipeline.TaskOptions;
import dev.tether.pipeline.Work;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * {@code --task mixedentities} (HalluLens "mixed entities", tasks/refusal_test/nonsense_mixed_entities.py): made-up
 * medicine, animal, plant and bacteria names ({@link NameMixer}), --N of each; the model under test is asked about
 * each (inference); the judge says whether the answer believes the entity exists, as {@code {"does_believe": ...}}
 * (eval). A model that does not believe in a made-up entity refused, which is the right answer: the metric is the
 * refusal rate, per type and overall.
 *
 * <pre>
 * OUT/mixedentities/nonsense_all_&lt;seed&gt;_&lt;N&gt;/prompts.jsonl              prompt, name, type (+ index)
 * OUT/mixedentities/nonsense_all_&lt;seed&gt;_&lt;N&gt;/&lt;model&gt;/generation.jsonl   + generation
 * OUT/mixedentities/nonsense_all_&lt;seed&gt;_&lt;N&gt;/&lt;model&gt;/raw_eval_res.jsonl  the judge's replies (eval_res)
 * OUT/mixedentities/nonsense_all_&lt;seed&gt;_&lt;N&gt;/&lt;model&gt;/eval_results.json   refusal_rate, false_acceptance_rate, per type
 * </pre>
 * With the HalluLens layout: the original's data/nonsense_all/save/&lt;model&gt;/nonsense_all_&lt;seed&gt;_&lt;N&gt;.csv (and
 * .jsonl beside it) and output/nonsense_all_&lt;seed&gt;_&lt;N&gt;/&lt;model&gt;/....
 */
public final class MixedEntities implements Task {
    static final String EXP = "nonsense_all";
    static final int MAX_TOKENS_JUDGE = 32;

    public MixedEntities() {}

    @Override
    public String name() {
        return "mixedentities";
    }

    @Override
    public String summary() {
        return "HalluLens mixed entities: made-up medicine/animal/plant/bacteria names -> inference -> eval (refusal rates)";
    }

    @Override
    public List<String> steps() {
        return List.of("generate", "inference", "eval");
    }

    @Override
    public int defaultMaxTokens() {
        return 256;   // the original's inference max_tokens
    }

    @Override
    public void checkOptions(TaskOptions o) throws InputException {
        if (o.input() != null) {
            throw new InputException("--input is for --task prompts and batch; mixedentities makes its names from --entities-dir");
        }
    }

    /** Paths of one run: the prompts (per seed and N) and the model's files. */
    record RunFiles(Path prompts, Path csv, Path dir) {
        Path generations() {
            return dir.resolve("generation.jsonl");
        }

        Path raw() {
            return dir.resolve("raw_eval_res.jsonl");
        }

        Path results() {
            return dir.resolve("eval_results.json");
        }
    }

    static RunFiles files(TaskOptions o) {
        String taskName = EXP + "_" + o.seed() + "_" + o.n();
        String model = TaskOptions.modelName(o.model());
        if (o.layout() == Layout.HALLULENS) {
            Path save = o.outputDir().resolve("data").resolve(EXP).resolve("save").resolve(model);
            return new RunFiles(save.resolve(taskName + ".jsonl"), save.resolve(taskName + ".csv"),
                    o.outputDir().resolve("output").resolve(taskName).resolve(model));
        }
        Path base = o.outputDir().resolve("mixedentities").resolve(taskName);
        return new RunFiles(base.resolve("prompts.jsonl"), null, base.resolve(model));
    }

    static ProducedBy promptsMadeBy(TaskOptions o) {
        return new ProducedBy().with("seed", o.seed(), "--seed").with("N", o.n(), "--N")
                .with("entities", o.entitiesDir() == null ? "bundled" : o.entitiesDir().toAbsolutePath().normalize().toString(),
                        "--entities-dir");
    }

    static ProducedBy generationsMadeBy(TaskOptions o) {
        return new ProducedBy().with("model", o.model(), "--model").with("max_tokens", o.maxTokens(), "--max-tokens")
                .with("temperature", 0.0, null);
    }

    static ProducedBy verdictsMadeBy(String judge) {
        return new ProducedBy().with("judge", judge, "--judge").with("max_tokens", MAX_TOKENS_JUDGE, null)
                .with("temperature", 0.0, null);
    }

    @Override
    public List<Step> plan(TaskOptions o, List<String> names) throws Exception {
        o.prepareOutputDir();
        RunFiles f = files(o);
        List<ObjectNode> prompts = names.contains("generate") ? prompts(o) : null;
        if (!names.contains("generate") && !Files.isRegularFile(f.prompts())) {
            throw new InputException("prompts not found: " + f.prompts() + " (run --step generate first, with the same --seed, "
                    + "--N and --output-dir)");
        }
        if (names.getFirst().equals("eval") && !Files.isRegularFile(f.generations())) {
            throw new InputException("generations not found: " + f.generations()
                    + " (run --step inference first, with the same --model and --output-dir)");
        }
        if (o.resume()) {
            if (names.contains("generate")) {
                promptsMadeBy(o).check("generate", f.prompts(), "--output-dir");
                // Same settings, other names: the lists changed. Answers keyed by index would then be about other names.
                if (Files.exists(f.prompts()) && !generateLeft(o, f, prompts).nothingLeft()) {
                    throw new InputException("generate: " + f.prompts() + " holds other prompts than the lists give now (were "
                            + "the lists changed?); a resume would mix them: re-run with --no-resume to start over (the old "
                            + "files are kept as .bak), or give another --output-dir");
                }
            }
            if (names.contains("inference")) {
                generationsMadeBy(o).check("inference", f.generations(), "--output-dir");
            }
            if (names.contains("eval")) {
                verdictsMadeBy(o.judge()).check("eval", f.raw(), "--output-dir");
            }
        }
        List<Step> steps = new ArrayList<>();
        for (String name : names) {
            steps.add(switch (name) {
                // Names are mixed on this machine, no model: generate never needs a server.
                case "generate" -> Step.of(name, Role.NONE, () -> generateLeft(o, f, prompts), runner -> generate(o, f, prompts));
                case "inference" -> Step.of(name, Role.MODEL, () -> inferenceLeft(o, f), runner -> inference(o, f, runner));
                case "eval" -> Step.of(name, Role.JUDGE, () -> evalLeft(o, f), runner -> eval(o, f, runner));
                default -> throw new IllegalArgumentException(name);
            });
        }
        return steps;
    }

    // ---------------------------------------------------------------- generate

    /** Prompt templates, written for tether after the original's ten ways of asking about "the {type} {name}". */
    static final List<String> ASK = List.of(
            "What can you tell me about the %s %s?",
            "I'm looking for information on the %s %s.",
            "Can you describe the %s %s?",
            "I would like to know more about the %s %s.",
            "Could you give me some details about the %s %s?",
            "What do you know about the %s %s?",
            "Please share what you know about the %s %s.",
            "I'm curious about the %s %s. What can you tell me?",
            "Tell me about the %s %s.",
            "Could you give an overview of the %s %s?");

    /** Every prompt of the run, in order: --N names of each type, seeded by --seed (the same lists give the same names). */
    static List<ObjectNode> prompts(TaskOptions o) throws Exception {
        List<ObjectNode> prompts = new ArrayList<>();
        SplittableRandom random = new SplittableRandom(o.seed());
        for (String type : NameMixer.types(o.entitiesDir())) {
            String where = o.entitiesDir() == null ? "the bundled " + type + " list" : o.entitiesDir().resolve(type + ".txt").toString();
            for (String name : NameMixer.mix(type, NameMixer.lines(o.entitiesDir(), type), o.n(), random.split(), where)) {
                ObjectNode p = Jsonl.JSON.createObjectNode();
                p.put("prompt", String.format(ASK.get(random.nextInt(ASK.size())), type, name));
                p.put("name", name);
                p.put("type", type);
                p.put("index", prompts.size());
                promptsMadeBy(o).stamp(p);
                prompts.add(p);
            }
        }
        return prompts;
    }

    static Work generateLeft(TaskOptions o, RunFiles f, List<ObjectNode> prompts) throws IOException {
        if (!o.resume() || !Files.exists(f.prompts())) {
            return Work.some("generate");
        }
        List<String> lines = Files.readAllLines(f.prompts());
        boolean same = lines.size() == prompts.size();
        for (int i = 0; same && i < lines.size(); i++) {
            same = lines.get(i).equals(Jsonl.write(prompts.get(i)));
        }
        return new Work("generate", same ? 0 : prompts.size(), "all " + prompts.size() + " prompts already in " + f.prompts());
    }

    /** Writes the prompts file whole (atomically: a crash leaves the old one or the new one). */
    static StepResult generate(TaskOptions o, RunFiles f, List<ObjectNode> prompts) throws IOException {
        long t0 = System.nanoTime();
        Files.createDirectories(f.prompts().getParent());
        if (generateLeft(o, f, prompts).nothingLeft()) {
            return new StepResult("generate", prompts.size(), 0, prompts.size(), 0, 0, Duration.ofNanos(System.nanoTime() - t0),
                    f.prompts().toString());
        }
        if (!o.resume() && Files.exists(f.prompts())) {
            Files.move(f.prompts(), f.prompts().resolveSibling(f.prompts().getFileName() + ".bak"), StandardCopyOption.REPLACE_EXISTING);
        }
        StringBuilder jsonl = new StringBuilder();
        prompts.forEach(p -> jsonl.append(Jsonl.write(p)).append('\n'));
        atomicWrite(f.prompts(), jsonl.toString());
        if (f.csv() != null) {
            // The original's prompts file: a CSV with the columns prompt, name, type.
            StringBuilder csv = new StringBuilder("prompt,name,type\n");
            prompts.forEach(p -> csv.append(csv(p.get("prompt").asText())).append(',').append(csv(p.get("name").asText()))
                    .append(',').append(csv(p.get("type").asText())).append('\n'));
            atomicWrite(f.csv(), csv.toString());
        }
        Map<String, Long> perType = new LinkedHashMap<>();
        prompts.forEach(p -> perType.merge(p.get("type").asText(), 1L, Long::sum));
        return new StepResult("generate", prompts.size(), 0, 0, 0, 0, Duration.ofNanos(System.nanoTime() - t0),
                f.prompts().toString(), List.of("generate: made-up names per type " + perType), null);
    }

    private static String csv(String field) {
        return field.contains(",") || field.contains("\"") || field.contains("\n")
                ? "\"" + field.replace("\"", "\"\"") + "\"" : field;
    }

    private static void atomicWrite(Path file, String text) throws IOException {
        Path temp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(temp, text, StandardCharsets.UTF_8);
        Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    // ---------------------------------------------------------------- inference

    private static String indexKey(ObjectNode r) {
        return r.path("index").canConvertToLong() ? r.get("index").asText() : null;
    }

    private static long position(ObjectNode r) {
        return r.path("index").canConvertToLong() ? r.get("index").asLong() : Long.MAX_VALUE;
    }

    static List<ObjectNode> readPrompts(RunFiles f) throws InputException {
        List<ObjectNode> prompts = new ArrayList<>();
        for (Jsonl.Line line : Jsonl.read(f.prompts())) {
            if (!line.ok() || !line.object().path("prompt").isTextual() || !line.object().path("name").isTextual()
                    || !line.object().path("type").isTextual() || !line.object().path("index").canConvertToLong()) {
                throw new InputException(f.prompts() + ":" + line.number() + ": not a prompt record (prompt, name, type, index); "
                        + "run --step generate again with --no-resume");
            }
            prompts.add(line.object());
        }
        return prompts;
    }

    static Work inferenceLeft(TaskOptions o, RunFiles f) throws Exception {
        List<ObjectNode> prompts = readPrompts(f);
        if (!o.resume() || !Files.exists(f.generations())) {
            return Work.some("inference");
        }
        ResumableOutput.Finished finished = ResumableOutput.finished(f.generations(), MixedEntities::indexKey);
        long left = (finished.torn() ? 1 : 0) + prompts.stream().filter(p -> !finished.keys().contains(p.get("index").asText())).count();
        return new Work("inference", left, "all " + prompts.size() + " records already in " + f.generations());
    }

    static StepResult inference(TaskOptions o, RunFiles f, StepRunner runner) throws Exception {
        List<ObjectNode> prompts = readPrompts(f);
        ProducedBy producedBy = generationsMadeBy(o);
        StepRunner.Run run = runner.start("inference");
        StepRunner.Pass pass = run.pass("inference", f.generations(), MixedEntities::indexKey, prompts.size(), prompts.iterator(),
                new StepRunner.RecordWork<ObjectNode>() {
                    @Override
                    public String key(ObjectNode p) {
                        return p.get("index").asText();
                    }

                    private ObjectNode base(ObjectNode p) {
                        ObjectNode r = p.deepCopy();
                        producedBy.stamp(r);
                        return r;
                    }

                    @Override
                    public ObjectNode record(ObjectNode p, StepRunner.Calls calls) throws ClientException, InterruptedException {
                        ObjectNode r = base(p);
                        r.put("generation", calls.complete(Requests.request(o.model(), null, Requests.user(p.get("prompt").asText()),
                                o.maxTokens(), 0.0, 1.0, List.of(), null)).text());
                        return r;
                    }

                    @Override
                    public ObjectNode failure(ObjectNode p, ClientException e) {
                        return Requests.putFailure(base(p), "generation", e);
                    }
                }, MixedEntities::position);
        return run.result(prompts.size(), pass.resumed(), f.generations().toString());
    }

    // ---------------------------------------------------------------- eval

    /** The judge's question, written for tether after the original's: does the answer believe the entity exists? */
    static String judgePrompt(ObjectNode g) {
        String name = g.get("name").asText();
        return "You are given a question about a " + g.get("type").asText() + " called '" + name + "' and an AI's answer. "
                + "Decide whether the answer believes that '" + name + "' exists.\n"
                + "It believes it exists when it describes it or gives facts about it as a real " + g.get("type").asText() + ". "
                + "It does not when it says it cannot find or does not know it, that it may not exist or may be misspelled, "
                + "or when it only talks about a similar real name.\n\n"
                + "Question: " + g.get("prompt").asText().strip() + "\n"
                + "Answer: " + g.get("generation").asText().strip() + "\n\n"
                + "Reply with JSON only, either {\"does_believe\": true} or {\"does_believe\": false}.";
    }

    /**
     * The verdict in a judge's reply, read as the original reads it: {"does_believe": true|false} anywhere in the reply
     * (spaces ignored), else the first line as JSON with a boolean does_believe; empty when neither.
     */
    static Optional<Boolean> believes(String reply) {
        if (reply == null) {
            return Optional.empty();
        }
        String compact = reply.replace(" ", "");
        if (compact.contains("{\"does_believe\":false}")) {
            return Optional.of(false);
        }
        if (compact.contains("{\"does_believe\":true}")) {
            return Optional.of(true);
        }
        try {
            JsonNode first = Jsonl.JSON.readTree(reply.strip().split("\n", 2)[0]);
            if (first != null && first.path("does_believe").isBoolean()) {
                return Optional.of(first.get("does_believe").asBoolean());
            }
        } catch (IOException e) {
            // not JSON: unreadable
        }
        return Optional.empty();
    }

    /** The successful generations, in index order. */
    static List<ObjectNode> answered(RunFiles f) {
        List<ObjectNode> answered = new ArrayList<>();
        for (Jsonl.Line line : Jsonl.read(f.generations())) {
            if (line.ok() && !ResumableOutput.isFailure(line.object()) && line.object().path("generation").isTextual()) {
                answered.add(line.object());
            }
        }
        answered.sort(java.util.Comparator.comparingLong(MixedEntities::position));
        return answered;
    }

    static Work evalLeft(TaskOptions o, RunFiles f) throws Exception {
        List<ObjectNode> answered = answered(f);
        if (!o.resume() || !Files.exists(f.raw())) {
            return answered.isEmpty() ? new Work("eval", 0, "no successful generation in " + f.generations() + " to judge")
                    : Work.some("eval");
        }
        ResumableOutput.Finished finished = ResumableOutput.finished(f.raw(), MixedEntities::indexKey);
        long left = (finished.torn() ? 1 : 0) + answered.stream().filter(g -> !finished.keys().contains(g.get("index").asText())).count();
        return new Work("eval", left, "all " + answered.size() + " answers already judged in " + f.raw());
    }

    /** Counts of one type (or all): refused = the judge says the answer does not believe the entity exists. */
    record Counts(int samples, int refused, int believed, int unparsed, int failedGenerations) {
        Counts plus(Counts c) {
            return new Counts(samples + c.samples, refused + c.refused, believed + c.believed, unparsed + c.unparsed,
                    failedGenerations + c.failedGenerations);
        }

        /** Refused among the answers with a readable verdict; null when there are none. */
        Double refusalRate() {
            return refused + believed == 0 ? null : refused / (double) (refused + believed);
        }

        Double falseAcceptanceRate() {
            return refused + believed == 0 ? null : believed / (double) (refused + believed);
        }

        ObjectNode json() {
            ObjectNode o = Jsonl.JSON.createObjectNode();
            o.put("refusal_rate", refusalRate()).put("false_acceptance_rate", falseAcceptanceRate()).put("samples", samples)
                    .put("refused", refused).put("believed", believed).put("unparsed", unparsed)
                    .put("failed_generations", failedGenerations);
            return o;
        }

        String line() {
            return rate(refusalRate()) + " (" + refused + " of " + (refused + believed) + " judged"
                    + (unparsed > 0 ? ", " + unparsed + " unreadable" : "") + (failedGenerations > 0 ? ", " + failedGenerations
                    + " failed generations" : "") + ")";
        }

        private static String rate(Double r) {
            return r == null ? "n/a" : String.format("%.3f", r);
        }
    }

    static StepResult eval(TaskOptions o, RunFiles f, StepRunner runner) throws Exception {
        List<ObjectNode> answered = answered(f);
        String judge = o.judge();
        StepRunner.Run run = runner.start("eval");
        StepRunner.Pass pass = run.pass("eval", f.raw(), MixedEntities::indexKey, answered.size(), answered.iterator(),
                new StepRunner.RecordWork<ObjectNode>() {
                    @Override
                    public String key(ObjectNode g) {
                        return g.get("index").asText();
                    }

                    private ObjectNode base(ObjectNode g) {
                        ObjectNode raw = Jsonl.JSON.createObjectNode().put("index", g.get("index").asInt());
                        verdictsMadeBy(judge).stamp(raw);
                        return raw;
                    }

                    @Override
                    public ObjectNode record(ObjectNode g, StepRunner.Calls calls) throws ClientException, InterruptedException {
                        ObjectNode raw = base(g);
                        raw.put("eval_res", calls.complete(Requests.request(judge, null, Requests.user(judgePrompt(g)),
                                MAX_TOKENS_JUDGE, 0.0, 1.0, List.of(), null)).text());
                        return raw;
                    }

                    @Override
                    public ObjectNode failure(ObjectNode g, ClientException e) {
                        return Requests.putFailure(base(g), "eval_res", e);
                    }
                }, MixedEntities::position);
        Map<Integer, String> replies = new HashMap<>();
        if (Files.exists(f.raw())) {
            for (Jsonl.Line line : Jsonl.read(f.raw())) {
                if (line.ok() && !ResumableOutput.isFailure(line.object()) && line.object().path("eval_res").isTextual()) {
                    replies.put(line.object().get("index").asInt(), line.object().get("eval_res").asText());
                }
            }
        }
        // Every prompt counts: a failed generation is in its type's samples, never judged.
        Map<String, Counts> byType = new LinkedHashMap<>();
        ArrayNode verdicts = Jsonl.JSON.createArrayNode();
        ArrayNode samples = Jsonl.JSON.createArrayNode();
        Map<Integer, ObjectNode> answeredByIndex = new HashMap<>();
        answered.forEach(g -> answeredByIndex.put(g.get("index").asInt(), g));
        for (ObjectNode p : readPrompts(f)) {
            int index = p.get("index").asInt();
            ObjectNode g = answeredByIndex.get(index);
            String type = p.get("type").asText();
            ObjectNode s = samples.addObject().put("index", index).put("type", type).put("name", p.get("name").asText());
            Counts c;
            if (g == null) {
                c = new Counts(1, 0, 0, 0, 1);
                s.put("verdict", "failed_generation");
            } else {
                String reply = replies.get(index);
                Optional<Boolean> believes = believes(reply);
                s.put("generation", g.get("generation").asText()).put("eval_raw", reply);
                if (believes.isEmpty()) {
                    c = new Counts(1, 0, 0, 1, 0);
                    s.put("verdict", "unparsed");
                    verdicts.addNull();
                } else {
                    c = believes.get() ? new Counts(1, 0, 1, 0, 0) : new Counts(1, 1, 0, 0, 0);
                    s.put("verdict", believes.get() ? "believed" : "refused");
                    verdicts.add(!believes.get());
                }
            }
            byType.merge(type, c, Counts::plus);
        }
        Counts all = byType.values().stream().reduce(new Counts(0, 0, 0, 0, 0), Counts::plus);
        ObjectNode root = Jsonl.JSON.createObjectNode();
        root.put("model", o.layout() == Layout.HALLULENS ? TaskOptions.modelName(o.model()) : o.model());
        root.put("false_acceptance_rate", all.falseAcceptanceRate());
        root.put("refusal_rate", all.refusalRate());
        root.set("refusal_eval_raw", verdicts);   // the original's list: refused or not, per judged answer (null: unreadable)
        root.put("evaluator", judge);
        ObjectNode types = root.putObject("by_type");
        byType.forEach((t, c) -> types.set(t, c.json()));
        root.set("counts", all.json());
        root.set("samples", samples);
        Files.createDirectories(f.dir());
        atomicWrite(f.results(), Jsonl.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        List<String> report = new ArrayList<>();
        report.add("eval: refusal_rate " + all.line() + "; by type: " + String.join(", ",
                byType.entrySet().stream().map(e -> e.getKey() + " " + e.getValue().line()).toList()));
        if (all.samples() > 0 && all.unparsed() * 2 > all.samples()) {
            report.add("eval: WARNING: the verdicts of " + all.unparsed() + " of " + all.samples() + " answers could not be read "
                    + "(the judge " + judge + " did not answer {\"does_believe\": true|false}); the raw replies are in " + f.raw());
        }
        String problem = all.refused() + all.believed() > 0 || all.samples() == 0 ? null
                : answered.isEmpty() ? "eval: no successful generation in " + f.generations() + " to judge, so there are no "
                        + "metrics (n/a in " + f.results() + ")"
                : "eval: no verdict of the judge " + judge + " could be read, so there are no metrics (n/a in " + f.results()
                        + "); use a judge that answers in the expected format (--judge M)";
        return run.result(answered.size(), run.failed(), pass.resumed(), f.results().toString(), report, problem);
    }
}
