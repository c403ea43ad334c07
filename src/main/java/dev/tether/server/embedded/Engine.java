package dev.tether.server.embedded;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaIterator;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.Pair;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The model behind the embedded server: llama.cpp through de.kherud:llama. The binding runs
 * llama.cpp's own server loop with {@code parallel} slots; requests from many threads are queued to
 * it and decoded in one batch, so concurrent requests share the work instead of waiting in line.
 */
final class Engine implements AutoCloseable {
    /** One message of a chat. */
    record Message(String role, String content) {}

    /** What to generate. */
    record Request(String prompt, int maxTokens, float temperature, float topP, List<String> stop, Integer seed) {}

    /** The finished generation. finishReason is "stop" (end of text or a stop string) or "length". */
    record Result(String text, int promptTokens, int completionTokens, String finishReason) {}

    /** Receives each token's text as it is generated; throwing IOException (the client left) cancels the generation. */
    interface TokenSink {
        void accept(String token) throws IOException;
    }

    final String servedName;
    final int slotContext;
    private final LlamaModel model;

    Engine(Path gguf, String servedName, int contextSize, int parallel, int threads) {
        this.servedName = servedName;
        this.slotContext = contextSize / parallel;
        this.model = new LlamaModel(new ModelParameters()
                .setModel(gguf.toString())
                .setCtxSize(contextSize)
                .setParallel(parallel)
                .enableContBatching()
                .setThreads(threads)
                .setThreadsBatch(threads)
                .setGpuLayers(0));
    }

    int countTokens(String text) {
        return text.isEmpty() ? 0 : model.encode(text).length;
    }

    /** The chat turned into a prompt by the model's own chat template (from the GGUF). */
    String chatPrompt(List<Message> messages) {
        StringBuilder system = new StringBuilder();
        List<Pair<String, String>> turns = new ArrayList<>();
        for (Message m : messages) {
            switch (m.role()) {
                case "system", "developer" -> system.append(system.isEmpty() ? "" : "\n").append(m.content());
                case "user", "assistant" -> turns.add(new Pair<>(m.role(), m.content()));
                default -> throw ApiError.badRequest("messages: unknown role '" + m.role()
                        + "' (use system, user or assistant)");
            }
        }
        return model.applyTemplate(new InferenceParameters("").setMessages(system.toString(), turns));
    }

    Result generate(Request request, TokenSink sink) throws IOException {
        int promptTokens = countTokens(request.prompt());
        if (promptTokens + 1 > slotContext) {
            throw ApiError.badRequest("the prompt has " + promptTokens + " tokens but this server's context holds "
                    + slotContext + " per request; shorten the prompt or start the server with a larger --ctx");
        }
        int maxTokens = Math.min(request.maxTokens(), slotContext - promptTokens);
        InferenceParameters parameters = new InferenceParameters(request.prompt())
                .setNPredict(maxTokens)
                .setTemperature(request.temperature())
                .setTopP(request.topP())
                .setCachePrompt(false);
        if (!request.stop().isEmpty()) {
            parameters.setStopStrings(request.stop().toArray(String[]::new));
        }
        if (request.seed() != null) {
            parameters.setSeed(request.seed());
        }
        LlamaIterator iterator = model.generate(parameters).iterator();
        StringBuilder text = new StringBuilder();
        int generated = 0;
        try {
            while (iterator.hasNext()) {
                LlamaOutput output = iterator.next();
                boolean last = !iterator.hasNext();
                if (last && output.text.isEmpty()) {
                    break;   // the end-of-generation message carries no token
                }
                generated++;
                text.append(output.text);
                sink.accept(output.text);
            }
        } catch (IOException | RuntimeException e) {
            iterator.cancel();   // frees the slot at once
            System.out.println("[tether engine] generation cancelled after " + generated + " tokens: "
                    + (e instanceof IOException ? "the client left" : e.toString()));
            throw e;
        }
        String finish = generated >= maxTokens ? "length" : "stop";
        return new Result(text.toString(), promptTokens, generated, finish);
    }

    @Override
    public void close() {
        model.close();
    }
}
