package dev.tether.pipeline.precisewikiqa;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.client.ClientException;
import dev.tether.client.Completion;
import dev.tether.pipeline.InOrder;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The PreciseWikiQA task (HalluLens): generate short factual questions from wiki documents, answer them
 * with the model under test, and judge the answers (DESIGN 6). Files and fields follow the original
 * pipeline so existing data works:
 * <pre>
 * OUT/precise_qa/qa_goodwiki_&lt;q-generator&gt;_dynamic.jsonl   questions: doc fields + reference, prompt, answer
 * OUT/precisewikiqa/&lt;model&gt;/generation.jsonl             question fields + generation
 * OUT/precisewikiqa/&lt;model&gt;/abstain_eval_raw.jsonl        the judge's raw replies (resumable)
 * OUT/precisewikiqa/&lt;model&gt;/halu_eval_raw.jsonl
 * OUT/precisewikiqa/&lt;model&gt;/eval_results.json             halu_rate, refusal_rate, correct_rate, counts, verdicts
 * </pre>
 * ({@link Layout#HALLULENS} puts them at the original's own paths and key names.) tether adds a few fields of its
 * own: {@code candidate} (which sampling draw made a question, for reproducible resumes), {@code index} (a question's
 * position, keying generations and verdicts), {@code produced_by} (model and sampling settings; a resume with other
 * ones is refused), and {@code error} on failure records. Records are appended as they complete; when a step ends its
 * files are rewritten in index order ({@link InOrder}), as the original reads them by position.
 */
public final class PreciseWikiQa implements Task {
    static final int[] BUCKETS = {8, 9};   // the original's high-quality buckets, half each
    static final int MAX_TOKENS_QUESTION = 64;
    static final int MAX_TOKENS_ANSWERABILITY = 16;
    static final int MAX_TOKENS_JUDGE = 32;

    /** The original's task name for its output directory: precise_wikiqa_{wiki_src}_{mode}. */
    static final String HALLULENS_TASK = "precise_wikiqa_goodwiki_dynamic";

    public PreciseWikiQa() {}

    // ---------------------------------------------------------------- as a task

    @Override
    public String name() {
        return "precisewikiqa";
    }

    @Override
    public String summary() {
        return "HalluLens PreciseWikiQA: generate questions from wiki documents -> inference -> eval";
    }

    @Override
    public List<String> steps() {
        return List.of("generate", "inference", "eval");
    }

    @Override
    public void checkOptions(TaskOptions o) throws InputException {
        if (o.input() != null) {
            throw new InputException("--input is for --task prompts; precisewikiqa reads --wiki-file");
        }
    }

    @Override
    public List<Step> plan(TaskOptions o, List<String> names) throws Exception {
        o.prepareOutputDir();
        Path wikiFile = o.wikiFile();
        List<WikiDocs.Doc> docs = null;
        if (names.contains("generate")) {
            Path original = o.outputDir().resolve("data/wiki_data").resolve(WikiDocs.FILE_NAME);
            if (wikiFile == null && o.layout() == Layout.HALLULENS && Files.isRegularFile(original)) {
                wikiFile = original;   // a HalluLens checkout's own documents (its download script puts them there)
            }
            docs = wikiFile != null ? WikiDocs.load(wikiFile) : WikiDocs.loadSample();
        }
        Path questions = questionsFile(o.layout(), o.outputDir(), o.qGenerator());
        if (names.getFirst().equals("inference") && !Files.isRegularFile(questions)) {
            throw new InputException("questions file not found: " + questions
                    + " (run --step generate first, with the same --q-generator and --output-dir)");
        }
        if (names.getFirst().equals("inference")) {
            // Too few usable questions (a malformed file, a smaller --N earlier) is an input error: say so before a server starts.
            questions(questions, o.n());
        }
        Path generations = modelDir(o.layout(), o.outputDir(), o.model()).resolve("generation.jsonl");
        if (names.getFirst().equals("eval") && !Files.isRegularFile(generations)) {
            throw new InputException("generations not found: " + generations
                    + " (run --step inference first, with the same --model and --output-dir)");
        }
        // A resume must not mix models or settings in one file: refused here, before any server starts.
        for (String s : names) {
            checkResume(o, s);
        }
        List<WikiDocs.Doc> wikiDocs = docs;
        boolean sample = wikiFile == null;
        List<Step> steps = new ArrayList<>();
        for (String name : names) {
            steps.add(switch (name) {
                case "generate" -> Step.of(name, Role.GENERATOR, () -> generateWork(o, wikiDocs), () -> {
                    if (sample) {
                        WikiDocs.sample(o.outputDir().resolve("data"));   // the run's input, where a user can see it
                    }
                }, runner -> generate(o, runner, wikiDocs));
                case "inference" -> Step.of(name, Role.MODEL, () -> inferenceWork(o), runner -> inference(o, runner));
                case "eval" -> Step.of(name, Role.JUDGE, () -> evalWork(o), runner -> eval(o, runner));
                default -> throw new IllegalArgumentException(name);
            });
        }
        return steps;
    }

    public static String modelName(String model) {
        return TaskOptions.modelName(model);
    }

    public static Path questionsFile(Layout layout, Path outputDir, String qGenerator) {
        Path dir = layout == Layout.HALLULENS ? outputDir.resolve("data/precise_qa/save") : outputDir.resolve("precise_qa");
        return dir.resolve("qa_goodwiki_" + modelName(qGenerator) + "_dynamic.jsonl");
    }

    public static Path modelDir(Layout layout, Path outputDir, String model) {
        Path dir = layout == Layout.HALLULENS ? outputDir.resolve("output").resolve(HALLULENS_TASK) : outputDir.resolve("precisewikiqa");
        return dir.resolve(modelName(model));
    }

    // ---------------------------------------------------------------- provenance

    /** What made a question: the q-generator and the draws' seed (its sampling settings are tether's own). */
    static ProducedBy questionsMadeBy(String qGenerator, long seed) {
        return new ProducedBy().with("model", qGenerator, "--q-generator").with("max_tokens", MAX_TOKENS_QUESTION, null)
                .with("temperature", 0.7, null).with("seed", seed, "--seed");
    }

    static ProducedBy generationsMadeBy(String model, int maxTokens) {
        return new ProducedBy().with("model", model, "--model").with("max_tokens", maxTokens, "--max-tokens")
                .with("temperature", 0.0, null);
    }

    static ProducedBy verdictsMadeBy(String judge) {
        return new ProducedBy().with("judge", judge, "--judge").with("max_tokens", MAX_TOKENS_JUDGE, null)
                .with("temperature", 0.0, null);
    }

    /**
     * Refuses (an input error, before any server starts) to resume a step into files whose records were made by
     * another model or with other settings. Nothing to check when the run starts over.
     */
    static void checkResume(TaskOptions c, String step) throws InputException {
        String model = c.model();
        String qGenerator = c.qGenerator();
        String judge = c.judge();
        if (!c.resume()) {
            return;
        }
        switch (step) {
            case "generate" -> questionsMadeBy(qGenerator, c.seed()).check(step, questionsFile(c.layout(), c.outputDir(), qGenerator),
                    "--output-dir");
            case "inference" -> generationsMadeBy(model, c.maxTokens()).check(step,
                    modelDir(c.layout(), c.outputDir(), model).resolve("generation.jsonl"), "--output-dir");
            case "eval" -> {
                for (String raw : List.of("abstain_eval_raw.jsonl", "halu_eval_raw.jsonl")) {
                    verdictsMadeBy(judge).check(step, modelDir(c.layout(), c.outputDir(), model).resolve(raw), "--output-dir");
                }
            }
            default -> throw new IllegalArgumentException(step);
        }
    }

    // ---------------------------------------------------------------- generate

    /**
     * Adds answerable questions to the questions file until it holds n, half from each bucket. Each
     * draw {@code k} (a document and a section) comes from a random generator seeded with seed and k,
     * so a re-run continues the same sequence.
     */
    static StepResult generate(TaskOptions c, StepRunner runner, List<WikiDocs.Doc> docs) throws Exception {
        int n = c.n();
        String qGenerator = c.qGenerator();
        Map<Integer, List<WikiDocs.Doc>> pools = pools(docs);
        Path file = questionsFile(c.layout(), c.outputDir(), qGenerator);
        Map<Integer, Integer> need = need(pools, n);
        Map<Integer, AtomicInteger> have = new HashMap<>();
        long maxCandidate = count(c.resume() ? file : null, have);
        long already = have.values().stream().mapToInt(AtomicInteger::get).sum();
        AtomicLong failures = new AtomicLong();
        AtomicReference<String> firstFailure = new AtomicReference<>();
        AtomicBoolean rejectedByServer = new AtomicBoolean();
        AtomicLong rejected = new AtomicLong();
        long firstCandidate = maxCandidate + 1;
        long budget = 20L * n + 100;   // draws allowed before giving up on a model that never makes answerable questions
        /** One draw: a document and a section, from a random generator seeded with the seed and the draw's number. */
        record Draw(long candidate, WikiDocs.Doc doc, String section, int bucket) {}
        Iterator<Draw> draws = new Iterator<>() {
            long k = firstCandidate;

            @Override
            public boolean hasNext() {
                return k < firstCandidate + budget && missing(need, have) > 0;
            }

            @Override
            public Draw next() {
                long candidate = k++;
                SplittableRandom random = new SplittableRandom(c.seed() * 1_000_003L + candidate);
                int bucket = candidate % 2 == 0 ? 8 : 9;
                if (need.get(bucket) <= have.get(bucket).get()) {
                    bucket = bucket == 8 ? 9 : 8;
                }
                List<WikiDocs.Doc> pool = pools.get(bucket);
                WikiDocs.Doc doc = pool.get(random.nextInt(pool.size()));
                List<String> sections = Sections.split(doc.document());
                return new Draw(candidate, doc, sections.get(random.nextInt(sections.size())), bucket);
            }
        };
        StepRunner.RecordWork<Draw> work = new StepRunner.RecordWork<>() {
            @Override
            public boolean keyed() {
                return false;
            }

            @Override
            public String key(Draw d) {
                return null;
            }

            @Override
            public ObjectNode record(Draw d, StepRunner.Calls calls) throws InterruptedException {
                try {
                    Completion q = calls.complete(Requests.request(qGenerator,
                            null, Requests.user(Templates.question(d.doc().title(), d.section())),
                            MAX_TOKENS_QUESTION, 0.7, 0.9, List.of(), seedFor(c, d.candidate())));
                    String question = q.text().strip();
                    Completion a = calls.complete(Requests.request(qGenerator,
                            null, Requests.user(Templates.answerability(d.section(), question)),
                            MAX_TOKENS_ANSWERABILITY, 0.3, 1.0, List.of(), seedFor(c, d.candidate())));
                    Optional<String> answer = question.isEmpty() || question.toLowerCase().startsWith("unfortunately")
                            ? Optional.empty() : Verdicts.answer(a.text());
                    if (answer.isEmpty()) {
                        rejected.incrementAndGet();
                        return null;
                    }
                    synchronized (have) {   // a question is kept only while its bucket still needs one
                        if (have.get(d.bucket()).get() >= need.get(d.bucket())) {
                            return null;
                        }
                        have.get(d.bucket()).incrementAndGet();
                    }
                    ObjectNode record = d.doc().fields().deepCopy();
                    record.remove("document");
                    record.put("reference", d.section());
                    record.put("prompt", question);
                    record.put("answer", answer.get());
                    record.put("candidate", d.candidate());
                    questionsMadeBy(qGenerator, c.seed()).stamp(record);
                    return record;
                } catch (ClientException e) {
                    // A failed draw is not a record: generate draws again (no failure records in the questions file).
                    failures.incrementAndGet();
                    firstFailure.compareAndSet(null, e.getMessage());
                    // The server rejected the request itself (400/404/422): more draws get the same answer.
                    if (e.kind() == ClientException.Kind.REJECTED) {
                        rejectedByServer.set(true);
                    }
                    return null;
                }
            }

            @Override
            public ObjectNode failure(Draw d, ClientException e) {
                throw new IllegalStateException("generate writes no failure records");   // record() catches its failures
            }

            @Override
            public boolean more() {
                return missing(need, have) > 0 && !rejectedByServer.get();
            }
        };
        StepRunner.Run run = runner.start("generate");
        // No more draws in flight than questions still missing: extra answers past N would be thrown away.
        run.pass("generate", file, r -> null, n, draws, work, (int) Math.max(1, Math.min(runner.concurrency(), n - already)),
                null);
        long made = have.values().stream().mapToInt(AtomicInteger::get).sum();
        if (missing(need, have) > 0) {
            c.err().println("tether: generate made " + made + " of " + n + " answerable questions (" + rejected.get()
                    + " rejected as unanswerable or not a short answer, " + failures.get() + " requests failed"
                    + (firstFailure.get() == null ? "" : "; the first failure: " + firstFailure.get()) + ")");
        }
        return run.result(made, missing(need, have), already, file.toString(), List.of(), null);
    }

    /**
     * How many questions generate still has to add, from the questions file alone (streamed, not changed), so that
     * a run whose questions are all there starts no server.
     */
    static Work generateWork(TaskOptions c, List<WikiDocs.Doc> docs) throws InputException {
        int n = c.n();
        if (!c.resume()) {
            return Work.some("generate");
        }
        Path file = questionsFile(c.layout(), c.outputDir(), c.qGenerator());
        Map<Integer, AtomicInteger> have = new HashMap<>();
        count(file, have);
        return new Work("generate", missing(need(pools(docs), n), have), "all " + n + " questions already in " + file);
    }

    private static Map<Integer, List<WikiDocs.Doc>> pools(List<WikiDocs.Doc> docs) throws InputException {
        Map<Integer, List<WikiDocs.Doc>> pools = new HashMap<>();
        for (int bucket : BUCKETS) {
            pools.put(bucket, docs.stream().filter(d -> d.bucket() == bucket).toList());
        }
        if (pools.values().stream().allMatch(List::isEmpty)) {
            throw new InputException("no wiki documents in buckets 8 or 9 (h_score_cat), which questions are drawn from");
        }
        return pools;
    }

    /** Questions wanted per bucket: half each, or all from one when the other has no documents. */
    private static Map<Integer, Integer> need(Map<Integer, List<WikiDocs.Doc>> pools, int n) {
        Map<Integer, Integer> need = new HashMap<>();
        int half = n / 2;
        need.put(8, pools.get(8).isEmpty() ? 0 : (pools.get(9).isEmpty() ? n : n - half));
        need.put(9, pools.get(9).isEmpty() ? 0 : (pools.get(8).isEmpty() ? n : half));
        return need;
    }

    /** Counts the questions already in the file (none when null) per bucket into have; returns the highest draw number used (or -1). */
    private static long count(Path file, Map<Integer, AtomicInteger> have) {
        for (int bucket : BUCKETS) {
            have.put(bucket, new AtomicInteger());
        }
        long maxCandidate = -1;
        if (file != null && Files.exists(file)) {
            for (Jsonl.Line line : Jsonl.read(file)) {
                if (line.ok()) {
                    int bucket = line.object().path("h_score_cat").asInt(-1);
                    if (have.containsKey(bucket)) {
                        have.get(bucket).incrementAndGet();
                    }
                    maxCandidate = Math.max(maxCandidate, line.object().path("candidate").asLong(-1));
                }
            }
        }
        return maxCandidate;
    }

    private static int missing(Map<Integer, Integer> need, Map<Integer, AtomicInteger> have) {
        int missing = 0;
        for (int bucket : BUCKETS) {
            missing += Math.max(0, need.get(bucket) - have.get(bucket).get());
        }
        return missing;
    }

    private static Integer seedFor(TaskOptions c, long candidate) {
        return (int) ((c.seed() * 31 + candidate) & 0x7fffffff);
    }

    // ---------------------------------------------------------------- inference

    /** The first n usable questions of a questions file, each tagged with its index (run also calls it before any server starts). */
    public static List<ObjectNode> questions(Path file, int n) throws InputException {
        List<ObjectNode> questions = new ArrayList<>();
        questions(file, n, questions::add);
        return questions;
    }

    /** Streams the first n usable questions of a questions file to each, tagged with their index; fewer is an input error. */
    private static void questions(Path file, int n, java.util.function.Consumer<ObjectNode> each) throws InputException {
        if (!Files.isRegularFile(file)) {
            throw new InputException("questions file not found: " + file + " (run --step generate first, with the same --q-generator)");
        }
        int found = 0;
        for (Jsonl.Line line : Jsonl.read(file)) {
            if (line.ok() && line.object().path("prompt").isTextual() && line.object().path("answer").isTextual()) {
                ObjectNode q = line.object();
                q.put("index", found++);
                each.accept(q);
                if (found == n) {
                    break;
                }
            }
        }
        if (found < n) {
            throw new InputException(file + " has " + found + " usable questions, fewer than --N " + n
                    + " (run --step generate with --N " + n + " first)");
        }
    }

    private static String indexKey(ObjectNode r) {
        return r.has("index") ? r.get("index").asText() : null;
    }

    /**
     * How many of the first n questions have no successful generation yet, by streaming the files (which are not
     * changed): a complete generation.jsonl needs no server. Too few questions is the input error inference gives.
     */
    static Work inferenceWork(TaskOptions c) throws InputException, IOException {
        int n = c.n();
        questions(questionsFile(c.layout(), c.outputDir(), c.qGenerator()), n, q -> {});
        Path file = modelDir(c.layout(), c.outputDir(), c.model()).resolve("generation.jsonl");
        if (!c.resume() || !Files.exists(file)) {
            return Work.some("inference");
        }
        ResumableOutput.Finished finished = ResumableOutput.finished(file, PreciseWikiQa::indexKey);
        long left = finished.torn() ? 1 : 0;
        for (int i = 0; i < n; i++) {
            if (!finished.keys().contains(Integer.toString(i))) {
                left++;
            }
        }
        return new Work("inference", left, "all " + n + " records already in " + file);
    }

    static StepResult inference(TaskOptions c, StepRunner runner) throws Exception {
        int n = c.n();
        String model = c.model();
        List<ObjectNode> questions = questions(questionsFile(c.layout(), c.outputDir(), c.qGenerator()), n);
        Path file = modelDir(c.layout(), c.outputDir(), model).resolve("generation.jsonl");
        ProducedBy producedBy = generationsMadeBy(model, c.maxTokens());
        StepRunner.Run run = runner.start("inference");
        StepRunner.Pass pass = run.pass("inference", file, PreciseWikiQa::indexKey, n, questions.iterator(),
                new StepRunner.RecordWork<ObjectNode>() {
                    @Override
                    public String key(ObjectNode q) {
                        return q.get("index").asText();
                    }

                    private ObjectNode base(ObjectNode q) {
                        ObjectNode record = q.deepCopy();
                        producedBy.stamp(record);
                        return record;
                    }

                    @Override
                    public ObjectNode failure(ObjectNode q, ClientException e) {
                        return Requests.putFailure(base(q), "generation", e);
                    }

                    @Override
                    public ObjectNode record(ObjectNode q, StepRunner.Calls calls) throws ClientException, InterruptedException {
                        ObjectNode record = base(q);
                        Completion answer = calls.complete(Requests.request(model, null,
                                Requests.user(Templates.answer(q.get("prompt").asText())),
                                c.maxTokens(), 0.0, 1.0, List.of(), null));
                        record.put("generation", answer.text().strip());
                        return record;
                    }
                },
                // Written as answers came back; HalluLens reads generation.jsonl by position: index order from here on.
                PreciseWikiQa::position);
        return run.result(n, pass.resumed(), file.toString());
    }

    /** A record's place in index order (records without an index last). */
    static long position(ObjectNode r) {
        return r.path("index").canConvertToLong() ? r.get("index").asLong() : Long.MAX_VALUE;
    }

    // ---------------------------------------------------------------- eval

    /**
     * The judged outcome of a run: the metrics and their counts. A rate whose denominator is 0 (nothing judged) has no
     * value: null in eval_results.json and "n/a" in the line, never 0, which would read as "no hallucination".
     */
    public record Metrics(int total, int abstained, int answered, int correct, int incorrect, int unverifiable,
                          int unparsedAbstention, int unparsedVerdict, int failedGenerations) {
        /** Hallucinated (incorrect or unverifiable) among answered ones with a readable verdict; null when there are none. */
        public Double haluRate() {
            int judged = correct + incorrect + unverifiable;
            return judged == 0 ? null : (incorrect + unverifiable) / (double) judged;
        }

        /** Abstained among samples with a readable abstention verdict; null when there are none. */
        public Double refusalRate() {
            int decided = abstained + answered;
            return decided == 0 ? null : abstained / (double) decided;
        }

        public Double correctRate() {
            int decided = abstained + answered;
            return decided == 0 ? null : correct / (double) decided;
        }

        /** Samples that ended with a verdict that could be read: abstained, correct, incorrect or unverifiable. */
        public int readable() {
            return abstained + correct + incorrect + unverifiable;
        }

        /** Samples whose verdict (abstention, or hallucination after "not abstaining") could not be read. */
        public int unparsed() {
            return unparsedAbstention + unparsedVerdict;
        }

        public String summary() {
            return String.format("halu_rate %s, refusal_rate %s, correct_rate %s (%d samples: %d abstained, %d correct, "
                            + "%d incorrect, %d unverifiable; unparsed verdicts: %d abstention, %d hallucination; %d failed generations)",
                    rate(haluRate()), rate(refusalRate()), rate(correctRate()), total, abstained, correct, incorrect,
                    unverifiable, unparsedAbstention, unparsedVerdict, failedGenerations);
        }

        /** The loud line when more than half of the samples have no readable verdict, else null. */
        public String warning(String judge) {
            if (total == 0 || unparsed() * 2 <= total) {
                return null;
            }
            return "WARNING: the verdicts of " + unparsed() + " of " + total + " samples could not be read (the judge "
                    + judge + " did not answer in the expected format); "
                    + (readable() == 0 ? "there are no metrics" : "the metrics rest on " + readable() + " samples only")
                    + ". The judge's raw replies are in eval_results.json (\"samples\").";
        }

        private static String rate(Double r) {
            return r == null ? "n/a" : String.format("%.3f", r);
        }
    }

    static StepResult eval(TaskOptions c, StepRunner runner) throws Exception {
        int n = c.n();
        String model = c.model();
        String judge = c.judge();
        Path dir = modelDir(c.layout(), c.outputDir(), model);
        Path generations = dir.resolve("generation.jsonl");
        if (!Files.isRegularFile(generations)) {
            throw new InputException("generations not found: " + generations + " (run --step inference first, with the same --model)");
        }
        List<ObjectNode> samples = new ArrayList<>();
        int failedGenerations = 0;
        for (Jsonl.Line line : Jsonl.read(generations)) {
            if (line.ok() && line.object().path("index").asInt(Integer.MAX_VALUE) < n) {
                if (line.object().has("error") || !line.object().path("generation").isTextual()) {
                    failedGenerations++;
                } else {
                    samples.add(line.object());
                }
            }
        }
        samples.sort(java.util.Comparator.comparingInt(s -> s.get("index").asInt()));
        if (samples.isEmpty()) {
            throw new InputException(generations + " has no successful generations among the first " + n
                    + " questions (run --step inference first)");
        }
        Path abstainRaw = dir.resolve("abstain_eval_raw.jsonl");
        Path haluRaw = dir.resolve("halu_eval_raw.jsonl");
        StepRunner.Run run = runner.start("eval");
        // 1. abstention, for every sample
        long resumed = judge(run, judge, "eval: abstention", samples, abstainRaw,
                sample -> Templates.abstention(sample.get("prompt").asText(), sample.get("generation").asText()));
        Map<Integer, String> abstainReplies = replies(abstainRaw);
        // 2. hallucination, for the samples that did not abstain
        List<ObjectNode> answered = samples.stream()
                .filter(s -> Verdicts.abstention(abstainReplies.get(s.get("index").asInt())).orElse(true) == Boolean.FALSE)
                .toList();
        List<String> report = new ArrayList<>();
        if (answered.isEmpty()) {
            report.add("eval: no answer to judge for hallucination (every sample abstained, or its abstention verdict could not be read)");
        } else {
            judge(run, judge, "eval: hallucination", answered, haluRaw,
                    sample -> Templates.hallucination(sample.get("prompt").asText(), sample.get("answer").asText(),
                            sample.get("generation").asText()));
        }
        // Both raw files in index order, as abstain_eval_raw.jsonl is read by position in HalluLens.
        InOrder.sort(abstainRaw, PreciseWikiQa::position);
        InOrder.sort(haluRaw, PreciseWikiQa::position);
        Map<Integer, String> haluReplies = replies(haluRaw);
        Path results = dir.resolve("eval_results.json");
        Metrics metrics = writeResults(results, model, judge, samples, abstainReplies, haluReplies, failedGenerations,
                c.layout());
        report.add("eval: " + metrics.summary());
        String warning = metrics.warning(judge);
        if (warning != null) {
            report.add("eval: " + warning);
        }
        // Metrics from no verdict at all are no result: the run fails (exit 1) rather than report rates it does not have.
        String problem = metrics.readable() > 0 || metrics.total() == 0 ? null
                : "eval: none of the " + metrics.total() + " verdicts of the judge " + judge + " could be read, so there are "
                        + "no metrics (n/a in " + results + "); use a judge that answers in the expected format (--judge M)";
        return run.result(samples.size(), run.failed(), resumed, results.toString(), report, problem);
    }

    /**
     * How many verdicts eval still has to ask the judge for, by streaming its files (none is changed): every sample
     * (a successful generation among the first n) needs an abstention reply in abstain_eval_raw.jsonl, and every
     * sample whose reply reads as "not abstaining" needs a hallucination reply in halu_eval_raw.jsonl; failure
     * records and a torn last line count as missing. eval_results.json is rewritten from these files either way.
     */
    static Work evalWork(TaskOptions c) throws InputException, IOException {
        int n = c.n();
        Path dir = modelDir(c.layout(), c.outputDir(), c.model());
        Path generations = dir.resolve("generation.jsonl");
        if (!Files.isRegularFile(generations)) {
            throw new InputException("generations not found: " + generations + " (run --step inference first, with the same --model)");
        }
        if (!c.resume()) {
            return Work.some("eval");
        }
        Path abstainRaw = dir.resolve("abstain_eval_raw.jsonl");
        Path haluRaw = dir.resolve("halu_eval_raw.jsonl");
        ResumableOutput.Finished abstained = ResumableOutput.finished(abstainRaw, PreciseWikiQa::indexKey);
        ResumableOutput.Finished judged = ResumableOutput.finished(haluRaw, PreciseWikiQa::indexKey);
        java.util.BitSet samples = new java.util.BitSet(n);   // the indexes eval judges: one bit per question
        long left = (abstained.torn() ? 1 : 0) + (judged.torn() ? 1 : 0);
        long total = 0;
        for (Jsonl.Line line : Jsonl.read(generations)) {
            if (line.ok() && line.object().path("index").asInt(Integer.MAX_VALUE) < n
                    && !line.object().has("error") && line.object().path("generation").isTextual()) {
                int index = line.object().get("index").asInt();
                total++;
                if (index >= 0) {
                    samples.set(index);
                }
                if (!abstained.keys().contains(Integer.toString(index))) {
                    left++;
                }
            }
        }
        if (total == 0) {
            throw new InputException(generations + " has no successful generations among the first " + n
                    + " questions (run --step inference first)");
        }
        if (Files.exists(abstainRaw)) {
            for (Jsonl.Line line : Jsonl.read(abstainRaw)) {
                if (line.ok() && !line.object().has("error") && line.object().path("eval_res").isTextual()) {
                    int index = line.object().path("index").asInt(-1);
                    if (index >= 0 && samples.get(index)
                            && Verdicts.abstention(line.object().get("eval_res").asText()).orElse(true) == Boolean.FALSE
                            && !judged.keys().contains(Integer.toString(index))) {
                        left++;
                    }
                }
            }
        }
        return new Work("eval", left, "all " + total + " samples already judged in " + abstainRaw
                + (Files.exists(haluRaw) ? " and " + haluRaw.getFileName() : ""));
    }

    /**
     * One judging pass: asks the judge about every sample not yet in {@code rawFile}, appending its raw
     * reply (or a failure record) keyed by the sample's index. Returns how many were already there.
     */
    private static long judge(StepRunner.Run run, String judge, String label, List<ObjectNode> samples, Path rawFile,
                              java.util.function.Function<ObjectNode, String> prompt) throws Exception {
        return run.pass(label, rawFile, r -> r.get("index").asText(), samples.size(), samples.iterator(),
                new StepRunner.RecordWork<ObjectNode>() {
                    @Override
                    public String key(ObjectNode s) {
                        return s.get("index").asText();
                    }

                    private ObjectNode base(ObjectNode s) {
                        ObjectNode raw = Jsonl.JSON.createObjectNode().put("index", s.get("index").asInt());
                        verdictsMadeBy(judge).stamp(raw);
                        return raw;
                    }

                    @Override
                    public ObjectNode failure(ObjectNode s, ClientException e) {
                        return Requests.putFailure(base(s), "eval_res", e);
                    }

                    @Override
                    public ObjectNode record(ObjectNode s, StepRunner.Calls calls) throws ClientException, InterruptedException {
                        ObjectNode raw = base(s);
                        raw.put("eval_res", calls.complete(Requests.request(judge, null, Requests.user(prompt.apply(s)),
                                MAX_TOKENS_JUDGE, 0.0, 1.0, List.of(), null)).text());
                        return raw;
                    }
                }, null).resumed();
    }

    private static Map<Integer, String> replies(Path raw) {
        Map<Integer, String> replies = new HashMap<>();
        if (!Files.exists(raw)) {
            return replies;
        }
        for (Jsonl.Line line : Jsonl.read(raw)) {
            if (line.ok() && !line.object().has("error") && line.object().path("eval_res").isTextual()) {
                replies.put(line.object().get("index").asInt(), line.object().get("eval_res").asText());
            }
        }
        return replies;
    }

    static Metrics writeResults(Path file, String model, String judge, List<ObjectNode> samples,
                                Map<Integer, String> abstainReplies, Map<Integer, String> haluReplies,
                                int failedGenerations) throws IOException {
        return writeResults(file, model, judge, samples, abstainReplies, haluReplies, failedGenerations, Layout.TETHER);
    }

    /**
     * Writes eval_results.json. With the HalluLens layout the top-level keys are the original's: {@code model},
     * {@code halu_Rate}, {@code refusal_rate}, {@code correct_rate}, {@code evaluator_abstantion} [sic],
     * {@code evaluator_hallucination}, and per sample, in index order, {@code abstantion} (true/false, null when
     * unreadable), {@code halu_test_res} (hallucinated: true/false, null when not judged or unreadable),
     * {@code abstantion_raw_generation} and {@code is_hallucinated_raw_generation}; tether's counts and samples follow.
     */
    static Metrics writeResults(Path file, String model, String judge, List<ObjectNode> samples,
                                Map<Integer, String> abstainReplies, Map<Integer, String> haluReplies,
                                int failedGenerations, Layout layout) throws IOException {
        int abstained = 0, answered = 0, correct = 0, incorrect = 0, unverifiable = 0, unparsedA = 0, unparsedH = 0;
        ObjectNode root = Jsonl.JSON.createObjectNode();
        ArrayNode perSample = Jsonl.JSON.createArrayNode();
        for (ObjectNode s : samples) {
            int index = s.get("index").asInt();
            String aReply = abstainReplies.get(index);
            Optional<Boolean> abstains = Verdicts.abstention(aReply);
            ObjectNode v = perSample.addObject().put("index", index).put("prompt", s.get("prompt").asText())
                    .put("answer", s.get("answer").asText()).put("generation", s.get("generation").asText());
            v.put("abstain_raw", aReply);
            if (abstains.isEmpty()) {
                unparsedA++;
                v.putNull("is_abstaining");
                v.put("verdict", "unparsed_abstention");
                continue;
            }
            v.put("is_abstaining", abstains.get());
            if (abstains.get()) {
                abstained++;
                v.put("verdict", "abstained");
                continue;
            }
            answered++;
            String hReply = haluReplies.get(index);
            v.put("halu_raw", hReply);
            Optional<Verdicts.Hallucination> verdict = Verdicts.hallucination(hReply);
            if (verdict.isEmpty()) {
                unparsedH++;
                v.put("verdict", "unparsed_hallucination");
                continue;
            }
            switch (verdict.get()) {
                case CORRECT -> correct++;
                case INCORRECT -> incorrect++;
                case UNVERIFIABLE -> unverifiable++;
            }
            v.put("verdict", verdict.get().name().toLowerCase());
        }
        Metrics m = new Metrics(samples.size(), abstained, answered, correct, incorrect, unverifiable, unparsedA, unparsedH,
                failedGenerations);
        root.put("model", layout == Layout.HALLULENS ? modelName(model) : model);
        root.put(layout == Layout.HALLULENS ? "halu_Rate" : "halu_rate", m.haluRate());
        root.put("refusal_rate", m.refusalRate());
        root.put("correct_rate", m.correctRate());
        if (layout == Layout.HALLULENS) {
            root.put("evaluator_abstantion", judge);
            root.put("evaluator_hallucination", judge);
            ArrayNode abstention = root.putArray("abstantion");
            ArrayNode hallucinated = root.putArray("halu_test_res");
            ArrayNode abstentionRaw = root.putArray("abstantion_raw_generation");
            ArrayNode hallucinatedRaw = root.putArray("is_hallucinated_raw_generation");
            for (var v : perSample) {
                abstention.add(v.get("is_abstaining"));
                String verdict = v.get("verdict").asText();
                switch (verdict) {
                    case "correct" -> hallucinated.add(false);
                    case "incorrect", "unverifiable" -> hallucinated.add(true);
                    default -> hallucinated.addNull();
                }
                abstentionRaw.add(v.get("abstain_raw"));
                hallucinatedRaw.add(v.has("halu_raw") ? v.get("halu_raw") : Jsonl.JSON.nullNode());
            }
        }
        root.putObject("counts").put("samples", m.total()).put("abstained", abstained).put("answered", answered)
                .put("correct", correct).put("incorrect", incorrect).put("unverifiable", unverifiable)
                .put("unparsed_abstention", unparsedA).put("unparsed_hallucination", unparsedH)
                .put("failed_generations", failedGenerations);
        if (layout != Layout.HALLULENS) {
            root.put("evaluator_abstention", judge);
            root.put("evaluator_hallucination", judge);
        }
        root.set("samples", perSample);
        Path temp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(temp, Jsonl.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return m;
    }
}
