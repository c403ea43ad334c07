package dev.tether.pipeline.triviaqa;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
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
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code --task triviaqa} (the original runner's tasks/triviaqa): TriviaQA questions answered by the model under test
 * (inference), then judged by the original's rule (eval, no model: an answer is correct when one of the question's gold
 * aliases appears in it, case-insensitively).
 *
 * <p>Input: TriviaQA's own JSON ({@code {"Data": [{"Question", "Answer": {"Aliases": [...]}, "QuestionId"}]}}, e.g.
 * {@code unfiltered-web-dev.json}), streamed; the first --N questions are used. Files, as the original's:
 * {@code generation.jsonl} (prompt {@code "Q: <question>\nA:"}, question, correct_answers, question_id, generation)
 * and {@code eval_results.json}, under OUT/triviaqa/&lt;model&gt;/ or, with the HalluLens layout,
 * output/triviaqa_unfiltered_dev/&lt;model&gt;/.
 */
public final class TriviaQa implements Task {
    static final String SAMPLE = "/dev/tether/pipeline/data/triviaqa-sample.json";
    /** The original's TASKNAME for its default variant and split: triviaqa_{dataset_variant}_{split}. */
    static final String HALLULENS_TASK = "triviaqa_unfiltered_dev";
    /** Where the original's download puts the dev split, relative to a HalluLens checkout. */
    static final String HALLULENS_DATA = "data/triviaqa-unfiltered/unfiltered-web-dev.json";
    static final String EVALUATOR = "triviaqa_string_matching";

    public TriviaQa() {}

    @Override
    public String name() {
        return "triviaqa";
    }

    @Override
    public String summary() {
        return "TriviaQA questions (--data, TriviaQA JSON) -> inference -> eval against the gold aliases";
    }

    @Override
    public List<String> steps() {
        return List.of("inference", "eval");
    }

    @Override
    public int defaultMaxTokens() {
        return 256;   // the original's --max_inference_tokens
    }

    @Override
    public void checkOptions(TaskOptions o) throws InputException {
        if (o.input() != null) {
            throw new InputException("--input is for --task prompts and batch; triviaqa reads --data FILE (TriviaQA JSON)");
        }
    }

    /** One question: its place among the first N, and the fields generation.jsonl carries. */
    record Question(int index, String id, String question, List<String> aliases) {
        String prompt() {
            return "Q: " + question + "\nA:";
        }
    }

    public static Path modelDir(Layout layout, Path outputDir, String model) {
        Path dir = layout == Layout.HALLULENS ? outputDir.resolve("output").resolve(HALLULENS_TASK) : outputDir.resolve("triviaqa");
        return dir.resolve(TaskOptions.modelName(model));
    }

    static ProducedBy generationsMadeBy(String model, int maxTokens) {
        return new ProducedBy().with("model", model, "--model").with("max_tokens", maxTokens, "--max-tokens")
                .with("temperature", 0.0, null);
    }

    @Override
    public List<Step> plan(TaskOptions o, List<String> names) throws Exception {
        o.prepareOutputDir();
        Path data = o.data();
        Path original = o.outputDir().resolve(HALLULENS_DATA);
        if (data == null && o.layout() == Layout.HALLULENS && Files.isRegularFile(original)) {
            data = original;   // a HalluLens checkout's own download
        }
        if (data != null) {
            TaskOptions.checkInputFile(data, "--data");
        }
        List<Question> questions = read(data, o.n());
        Path dir = modelDir(o.layout(), o.outputDir(), o.model());
        Path generations = dir.resolve("generation.jsonl");
        if (names.getFirst().equals("eval") && !Files.isRegularFile(generations)) {
            throw new InputException("generations not found: " + generations
                    + " (run --step inference first, with the same --model and --output-dir)");
        }
        if (o.resume() && names.contains("inference")) {
            generationsMadeBy(o.model(), o.maxTokens()).check("inference", generations, "--output-dir");
        }
        // Fewer questions than --N: all of them, as the original does; said after the step's summary (stdout).
        List<String> note = questions.size() >= o.n() ? List.of()
                : List.of("inference: " + (data == null ? "the bundled sample" : data) + " has " + questions.size()
                        + " questions, fewer than --N " + o.n() + ": all of them are used");
        List<Step> steps = new ArrayList<>();
        for (String name : names) {
            steps.add(switch (name) {
                case "inference" -> Step.of(name, Role.MODEL, () -> inferenceLeft(o, questions, generations),
                        runner -> inference(o, runner, questions, generations, note));
                // String matching needs no server: eval always runs, and rewrites eval_results.json from the generations.
                case "eval" -> Step.of(name, Role.NONE, () -> Work.some(name), runner -> eval(o, questions, dir));
                default -> throw new IllegalArgumentException(name);
            });
        }
        return steps;
    }

    // ---------------------------------------------------------------- the questions

    /**
     * The first n questions of a TriviaQA JSON file (the bundled sample when null), read as a stream: the file's other
     * fields (SearchResults, EntityPages: most of its size) are skipped item by item, never held at once.
     */
    static List<Question> read(Path file, int n) throws InputException, IOException {
        String where = file == null ? "the bundled TriviaQA sample" : file.toString();
        try (InputStream in = file == null ? TriviaQa.class.getResourceAsStream(SAMPLE) : Files.newInputStream(file);
             JsonParser p = Jsonl.JSON.createParser(in)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new InputException(where + " is not TriviaQA JSON (an object with \"Data\": [questions...])");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (!field.equals("Data")) {
                    p.skipChildren();
                    continue;
                }
                if (value != JsonToken.START_ARRAY) {
                    throw new InputException(where + ": \"Data\" must be an array of questions");
                }
                List<Question> questions = new ArrayList<>();
                Set<String> ids = new HashSet<>();
                int item = 0;
                while (p.nextToken() != JsonToken.END_ARRAY && questions.size() < n) {
                    JsonNode q = p.readValueAsTree();
                    Question question = question(where, item, q);
                    if (!ids.add(question.id())) {
                        throw new InputException(where + ": Data[" + item + "] has the same QuestionId \"" + question.id()
                                + "\" as an earlier question; ids must be unique (they key the resume)");
                    }
                    questions.add(question);
                    item++;
                }
                if (questions.isEmpty()) {
                    throw new InputException(where + " has no questions (\"Data\" is empty)");
                }
                return questions;
            }
            throw new InputException(where + " has no \"Data\" (TriviaQA JSON: {\"Data\": [{\"Question\", \"Answer\": {\"Aliases\"}}]})");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new InputException(where + " is not valid JSON (line " + e.getLocation().getLineNr() + ": "
                    + e.getOriginalMessage() + ")");
        }
    }

    private static Question question(String where, int item, JsonNode q) throws InputException {
        String at = where + ": Data[" + item + "]";
        if (!q.isObject() || !q.path("Question").isTextual() || q.get("Question").asText().isBlank()) {
            throw new InputException(at + " has no \"Question\" (a string)");
        }
        JsonNode aliases = q.path("Answer").path("Aliases");
        if (!aliases.isArray() || aliases.isEmpty()) {
            throw new InputException(at + " has no \"Answer\": {\"Aliases\": [...]} (the gold answers it is judged against)");
        }
        List<String> gold = new ArrayList<>();
        for (JsonNode a : aliases) {
            if (!a.isTextual() || a.asText().isEmpty()) {
                throw new InputException(at + ": every Answer.Aliases entry must be a non-empty string");
            }
            gold.add(a.asText());
        }
        // The original's id when a question has none: triviaqa_{split}_{idx}.
        String id = q.path("QuestionId").isTextual() ? q.get("QuestionId").asText() : "triviaqa_dev_" + item;
        return new Question(item, id, q.get("Question").asText(), List.copyOf(gold));
    }

    private static String idKey(ObjectNode r) {
        return r.path("question_id").isTextual() ? r.get("question_id").asText() : null;
    }

    // ---------------------------------------------------------------- inference

    static Work inferenceLeft(TaskOptions o, List<Question> questions, Path generations) throws IOException {
        if (!o.resume() || !Files.exists(generations)) {
            return Work.some("inference");
        }
        ResumableOutput.Finished finished = ResumableOutput.finished(generations, TriviaQa::idKey);
        long left = (finished.torn() ? 1 : 0) + questions.stream().filter(q -> !finished.keys().contains(q.id())).count();
        return new Work("inference", left, "all " + questions.size() + " records already in " + generations);
    }

    static StepResult inference(TaskOptions o, StepRunner runner, List<Question> questions, Path generations,
                                List<String> note) throws Exception {
        ProducedBy producedBy = generationsMadeBy(o.model(), o.maxTokens());
        StepRunner.Run run = runner.start("inference");
        StepRunner.Pass pass = run.pass("inference", generations, TriviaQa::idKey, questions.size(), questions.iterator(),
                new StepRunner.RecordWork<Question>() {
                    @Override
                    public String key(Question q) {
                        return q.id();
                    }

                    private ObjectNode base(Question q) {
                        ObjectNode r = Jsonl.JSON.createObjectNode();
                        r.put("prompt", q.prompt());
                        r.put("question", q.question());
                        q.aliases().forEach(r.putArray("correct_answers")::add);
                        r.put("question_id", q.id());
                        r.put("index", q.index());
                        producedBy.stamp(r);
                        return r;
                    }

                    @Override
                    public ObjectNode record(Question q, StepRunner.Calls calls) throws ClientException, InterruptedException {
                        ObjectNode r = base(q);
                        r.put("generation", calls.complete(Requests.request(o.model(), null, Requests.user(q.prompt()),
                                o.maxTokens(), 0.0, 1.0, List.of(), null)).text());
                        return r;
                    }

                    @Override
                    public ObjectNode failure(Question q, ClientException e) {
                        return Requests.putFailure(base(q), "generation", e);
                    }
                }, r -> r.path("index").canConvertToLong() ? r.get("index").asLong() : Long.MAX_VALUE);
        return run.result(questions.size(), run.failed(), pass.resumed(), generations.toString(), note, null);
    }

    // ---------------------------------------------------------------- eval

    /** The original's rule: correct when any gold alias appears in the answer, ignoring case. */
    static boolean matches(String generation, List<String> aliases) {
        String answer = generation.toLowerCase(Locale.ROOT);
        return aliases.stream().anyMatch(a -> answer.contains(a.toLowerCase(Locale.ROOT)));
    }

    /**
     * Counts of an eval. Rates over what was judged (answers that exist); a rate over nothing is null ("n/a"), never 0.
     * TriviaQA's eval has no abstention judge: a refusal is simply an answer without a gold alias (incorrect), so the
     * refusal rate is not measured — null, where the original writes a constant 0.0.
     */
    record Metrics(int samples, int correct, int incorrect, int failedGenerations, int missingGenerations) {
        int judged() {
            return correct + incorrect;
        }

        Double correctRate() {
            return judged() == 0 ? null : correct / (double) judged();
        }

        Double haluRate() {
            return judged() == 0 ? null : incorrect / (double) judged();
        }

        String summary() {
            return String.format("correct_rate %s, halu_rate %s (incorrect), refusal_rate n/a (not judged: TriviaQA's eval "
                            + "has no abstention judge) (%d samples: %d correct, %d incorrect; %d failed generations, "
                            + "%d without a generation)", rate(correctRate()), rate(haluRate()), samples, correct, incorrect,
                    failedGenerations, missingGenerations);
        }

        private static String rate(Double r) {
            return r == null ? "n/a" : String.format("%.3f", r);
        }
    }

    static StepResult eval(TaskOptions o, List<Question> questions, Path dir) throws IOException {
        long t0 = System.nanoTime();
        Path generations = dir.resolve("generation.jsonl");
        Map<String, ObjectNode> byId = new HashMap<>();
        if (Files.exists(generations)) {
            for (Jsonl.Line line : Jsonl.read(generations)) {
                if (line.ok() && line.object().path("question_id").isTextual()) {
                    byId.put(line.object().get("question_id").asText(), line.object());
                }
            }
        }
        int correct = 0, incorrect = 0, failed = 0, missing = 0;
        ArrayNode perSample = Jsonl.JSON.createArrayNode();
        List<Question> judged = new ArrayList<>();
        List<Boolean> verdicts = new ArrayList<>();
        List<String> answers = new ArrayList<>();
        for (Question q : questions) {
            ObjectNode g = byId.get(q.id());
            ObjectNode v = perSample.addObject().put("index", q.index()).put("question_id", q.id()).put("question", q.question());
            q.aliases().forEach(v.putArray("correct_answers")::add);
            if (g == null) {
                missing++;
                v.putNull("generation").put("verdict", "no_generation");
            } else if (ResumableOutput.isFailure(g) || !g.path("generation").isTextual()) {
                failed++;
                v.putNull("generation").put("verdict", "failed_generation");
            } else {
                String text = g.get("generation").asText();
                boolean ok = matches(text, q.aliases());
                if (ok) {
                    correct++;
                } else {
                    incorrect++;
                }
                v.put("generation", text).put("is_correct", ok).put("verdict", ok ? "correct" : "incorrect");
                judged.add(q);
                verdicts.add(ok);
                answers.add(text);
            }
        }
        Metrics m = new Metrics(questions.size(), correct, incorrect, failed, missing);
        ObjectNode root = Jsonl.JSON.createObjectNode();
        boolean hallulens = o.layout() == Layout.HALLULENS;
        root.put("model", hallulens ? TaskOptions.modelName(o.model()) : o.model());
        root.put(hallulens ? "halu_Rate" : "halu_rate", m.haluRate());
        root.putNull("refusal_rate");   // not judged (see Metrics)
        root.put("correct_rate", m.correctRate());
        if (hallulens) {
            // The original's per-sample arrays, over the judged samples in order.
            root.put("evaluator_abstantion", EVALUATOR);
            root.put("evaluator_hallucination", EVALUATOR);
            ArrayNode abstention = root.putArray("abstantion");
            ArrayNode halu = root.putArray("halu_test_res");
            ArrayNode abstentionRaw = root.putArray("abstantion_raw_generation");
            ArrayNode haluRaw = root.putArray("is_hallucinated_raw_generation");
            ArrayNode prompt = root.putArray("prompt");
            ArrayNode generation = root.putArray("generation");
            ArrayNode answer = root.putArray("answer");
            for (int i = 0; i < judged.size(); i++) {
                abstention.add(false);
                halu.add(!verdicts.get(i));
                abstentionRaw.add("{\"is_abstaining\":false}");
                haluRaw.add(verdicts.get(i) ? "CORRECT" : "INCORRECT");
                prompt.add(judged.get(i).prompt());
                generation.add(answers.get(i));
                answer.add(pythonList(judged.get(i).aliases()));
            }
        } else {
            root.put("evaluator", EVALUATOR);
        }
        root.putObject("counts").put("samples", m.samples()).put("correct", correct).put("incorrect", incorrect)
                .put("failed_generations", failed).put("missing_generations", missing);
        root.set("samples", perSample);
        Path results = dir.resolve("eval_results.json");
        Files.createDirectories(dir);
        Path temp = results.resolveSibling(results.getFileName() + ".tmp");
        Files.writeString(temp, Jsonl.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
        Files.move(temp, results, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        String problem = m.judged() > 0 ? null
                : "eval: none of the " + m.samples() + " questions has a generation to judge, so there are no metrics (n/a in "
                        + results + "); run --step inference first";
        return new StepResult("eval", m.samples(), 0, 0, 0, 0, Duration.ofNanos(System.nanoTime() - t0), results.toString(),
                List.of("eval: " + m.summary()), problem);
    }

    /** A list as Python's str() shows it, as the original writes "answer" (str(row['correct_answers'])). */
    static String pythonList(List<String> items) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < items.size(); i++) {
            String s = items.get(i);
            b.append(i == 0 ? "" : ", ");
            if (s.contains("'") && !s.contains("\"")) {
                b.append('"').append(s.replace("\\", "\\\\")).append('"');
            } else {
                b.append('\'').append(s.replace("\\", "\\\\").replace("'", "\\'")).append('\'');
            }
        }
        return b.append(']').toString();
    }
}
