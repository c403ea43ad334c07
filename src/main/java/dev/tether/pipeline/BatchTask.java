package dev.tether.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tether.client.ClientException;
import dev.tether.client.Completion;
import dev.tether.client.CompletionRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * {@code --task batch}: the OpenAI Batch API's JSONL, the format {@code vllm run-batch} reads and writes.
 *
 * <p>Input lines: {@code {"custom_id": "...", "method": "POST", "url": "/v1/chat/completions" | "/v1/completions",
 * "body": {...}}}. Output lines, in input order: {@code {"id", "custom_id", "response": {"status_code": 200,
 * "request_id", "body": {...}}, "error": null}}, or {@code "response": null, "error": {"code", "message"}} for a
 * request that failed after its retries (a re-run retries it). The body's {@code model} is replaced by the run's
 * --model (the server tether runs serves that one); a body without max_tokens or temperature gets --max-tokens and
 * --temperature. The response body is rebuilt from the answer tether's client reads: the first choice's text and
 * finish_reason, and the usage.
 */
public final class BatchTask implements Task {
    static final String CHAT = "/v1/chat/completions";
    static final String COMPLETIONS = "/v1/completions";

    BatchTask() {}

    @Override
    public String name() {
        return "batch";
    }

    @Override
    public String summary() {
        return "OpenAI Batch API JSONL (--input, as vllm run-batch) -> one response line per custom_id";
    }

    @Override
    public List<String> steps() {
        return List.of("batch");
    }

    @Override
    public void checkOptions(TaskOptions o) throws InputException {
        if (o.input() == null) {
            throw new InputException("--task batch needs --input FILE.jsonl (OpenAI Batch API lines: custom_id, method, url, body)");
        }
    }

    static Path output(TaskOptions o) {
        return o.output() != null ? o.output()
                : o.outputDir().resolve("batch").resolve(TaskOptions.modelName(o.model())).resolve("results.jsonl");
    }

    static ProducedBy producedBy(TaskOptions o) {
        return new ProducedBy().with("model", o.model(), "--model").with("max_tokens", o.maxTokens(), "--max-tokens")
                .with("temperature", o.temperature(), "--temperature");
    }

    @Override
    public List<Step> plan(TaskOptions o, List<String> stepNames) throws Exception {
        if (o.output() == null) {
            o.prepareOutputDir();
        }
        long total = validate(o.input());
        Path output = output(o);
        TaskOptions.checkOutputFile(output);
        TaskOptions.checkNotInput(o.input(), output);
        if (o.resume()) {
            producedBy(o).check("batch", output, "--output");
        }
        return List.of(Step.of("batch", Role.MODEL, () -> left(o, output, total), runner -> run(o, output, runner, total)));
    }

    /** Reads the whole input once before anything is sent: the first bad line as file:line, then duplicates. */
    public static long validate(Path input) throws InputException {
        TaskOptions.checkInputFile(input, "input");
        String firstProblem = null;
        long badLines = 0;
        long count = 0;
        for (Jsonl.Line line : Jsonl.read(input)) {
            count++;
            String problem = line.ok() ? check(line.object()) : line.error();
            if (problem != null) {
                if (firstProblem == null) {
                    firstProblem = input + ":" + line.number() + ": " + problem;
                }
                badLines++;
            }
        }
        if (firstProblem != null) {
            throw new InputException(firstProblem + (badLines > 1 ? " (and " + (badLines - 1) + " more bad lines)" : "")
                    + "; each line must be {\"custom_id\": \"...\", \"method\": \"POST\", \"url\": \"" + CHAT + "\" or \""
                    + COMPLETIONS + "\", \"body\": {...}}");
        }
        if (count == 0) {
            throw new InputException("input file has no requests: " + input);
        }
        long[] duplicate = InputLines.of(input, BatchTask::customId).duplicate();
        if (duplicate != null) {
            String id = null;
            for (Jsonl.Line line : Jsonl.read(input)) {
                if (line.number() == duplicate[1]) {
                    id = line.object().get("custom_id").asText();
                }
            }
            throw new InputException(input + ":" + duplicate[1] + ": the same \"custom_id\" " + Jsonl.JSON.getNodeFactory().textNode(id)
                    + " as line " + duplicate[0] + "; custom_ids must be unique (they key the resume)");
        }
        return count;
    }

    private static String customId(Jsonl.Line line) {
        return line.ok() && line.object().path("custom_id").isTextual() ? line.object().get("custom_id").asText() : null;
    }

    static String check(ObjectNode o) {
        JsonNode id = o.get("custom_id");
        if (id == null || !id.isTextual() || id.asText().isEmpty()) {
            return "\"custom_id\" must be a non-empty string";
        }
        if (!"POST".equals(o.path("method").asText(null))) {
            return "\"method\" must be \"POST\"";
        }
        String url = o.path("url").asText(null);
        if (!CHAT.equals(url) && !COMPLETIONS.equals(url)) {
            return "\"url\" must be \"" + CHAT + "\" or \"" + COMPLETIONS + "\" (tether's batch sends only these)"
                    + (url == null ? "" : ", not \"" + url + "\"");
        }
        JsonNode body = o.get("body");
        if (body == null || !body.isObject()) {
            return "\"body\" must be an object";
        }
        if (CHAT.equals(url)) {
            JsonNode messages = body.get("messages");
            if (messages == null || !messages.isArray() || messages.isEmpty()) {
                return "a " + CHAT + " body needs \"messages\" (a non-empty array)";
            }
            for (JsonNode m : messages) {
                if (!m.isObject() || !m.path("role").isTextual() || !m.path("content").isTextual()) {
                    return "each message needs string \"role\" and \"content\" (content parts are not supported)";
                }
            }
        } else if (!body.path("prompt").isTextual()) {
            return "a " + COMPLETIONS + " body needs \"prompt\" (a string)";
        }
        if (body.path("stream").asBoolean(false)) {
            return "\"stream\": true is not for a batch (each line gets one whole response)";
        }
        if (body.has("n") && body.get("n").asInt(1) != 1) {
            return "\"n\" must be 1 (tether's client reads one choice per request)";
        }
        return null;
    }

    private static String outputKey(ObjectNode r) {
        return r.path("custom_id").isTextual() ? r.get("custom_id").asText() : null;
    }

    static Work left(TaskOptions o, Path output, long total) throws java.io.IOException {
        if (!o.resume() || !Files.exists(output)) {
            return Work.some("batch");
        }
        ResumableOutput.Finished finished = ResumableOutput.finished(output, BatchTask::outputKey);
        long left = finished.torn() ? 1 : 0;
        for (Jsonl.Line line : Jsonl.read(o.input())) {
            if (!finished.keys().contains(line.object().get("custom_id").asText())) {
                left++;
            }
        }
        return new Work("batch", left, "all " + total + " requests already in " + output);
    }

    static StepResult run(TaskOptions o, Path output, StepRunner runner, long total) throws Exception {
        ProducedBy producedBy = producedBy(o);
        StepRunner.Run run = runner.start("batch");
        Iterator<Jsonl.Line> lines = Jsonl.read(o.input()).iterator();
        StepRunner.Pass pass = run.pass("batch", output, BatchTask::outputKey, total, lines,
                new StepRunner.RecordWork<Jsonl.Line>() {
                    @Override
                    public String key(Jsonl.Line line) {
                        return line.object().get("custom_id").asText();
                    }

                    private ObjectNode base(Jsonl.Line line) {
                        ObjectNode record = Jsonl.JSON.createObjectNode();
                        record.put("id", "tether-" + UUID.randomUUID());
                        record.put("custom_id", key(line));
                        return record;
                    }

                    @Override
                    public ObjectNode record(Jsonl.Line line, StepRunner.Calls calls) throws ClientException, InterruptedException {
                        ObjectNode body = (ObjectNode) line.object().get("body");
                        boolean chat = CHAT.equals(line.object().get("url").asText());
                        Completion c = calls.complete(request(o, body, chat));
                        ObjectNode record = base(line);
                        ObjectNode response = record.putObject("response");
                        response.put("status_code", 200);
                        response.put("request_id", "tether-batch-" + UUID.randomUUID());
                        response.set("body", responseBody(o.model(), chat, c));
                        record.putNull("error");
                        producedBy.stamp(record);
                        return record;
                    }

                    @Override
                    public ObjectNode failure(Jsonl.Line line, ClientException e) {
                        ObjectNode record = base(line);
                        record.putNull("response");
                        record.putObject("error").put("code", e.kind().name().toLowerCase()).put("message", e.getMessage());
                        producedBy.stamp(record);
                        return record;
                    }
                }, null);
        // Written as answers came back: rewritten in input order when the step ends, as vllm run-batch writes it.
        InputLines order = InputLines.of(o.input(), BatchTask::customId);
        InOrder.sort(output, r -> r.path("custom_id").isTextual() ? order.lineOf(r.get("custom_id").asText()) : Long.MAX_VALUE);
        return run.result(pass.resumed() + pass.written(), pass.resumed(), output.toString());
    }

    /** The body as a request to the run's model: its own fields kept (max_tokens and temperature defaulted). */
    static CompletionRequest request(TaskOptions o, ObjectNode body, boolean chat) {
        CompletionRequest r;
        if (chat) {
            List<CompletionRequest.Message> messages = new ArrayList<>();
            for (JsonNode m : body.get("messages")) {
                messages.add(new CompletionRequest.Message(m.get("role").asText(), m.get("content").asText()));
            }
            r = CompletionRequest.chat(o.model(), messages);
        } else {
            r = CompletionRequest.prompt(o.model(), body.get("prompt").asText());
        }
        Map<String, Object> extra = new LinkedHashMap<>();
        if (!body.has("max_tokens") && !body.has("max_completion_tokens")) {
            extra.put("max_tokens", o.maxTokens());
        }
        if (!body.has("temperature")) {
            extra.put("temperature", o.temperature());
        }
        body.properties().forEach(e -> {
            if (!List.of("model", "messages", "prompt", "stream", "stream_options").contains(e.getKey())) {
                extra.put(e.getKey(), e.getValue());
            }
        });
        return r.withExtra(extra);
    }

    /** An OpenAI response object for the answer: one choice, its finish_reason, and the usage. */
    static ObjectNode responseBody(String model, boolean chat, Completion c) {
        ObjectNode body = Jsonl.JSON.createObjectNode();
        body.put("id", (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", ""));
        body.put("object", chat ? "chat.completion" : "text_completion");
        body.put("created", Instant.now().getEpochSecond());
        body.put("model", model);
        ObjectNode choice = body.putArray("choices").addObject().put("index", 0);
        if (chat) {
            choice.putObject("message").put("role", "assistant").put("content", c.text());
        } else {
            choice.put("text", c.text());
        }
        choice.put("finish_reason", c.finishReason());
        body.putObject("usage").put("prompt_tokens", c.promptTokens()).put("completion_tokens", c.completionTokens())
                .put("total_tokens", c.totalTokens());
        return body;
    }
}
