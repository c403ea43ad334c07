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
import java.util.Map;

/**
 * The model behind the embedded server: llama.cpp through de.kherud:llama. The binding runs
 * llama.cpp's own server loop with {@code parallel} slots; requests from many threads are queued to
 * it and decoded in one batch, so concurrent requests share the work instead of waiting in line.
 */
final class Engine implements AutoCloseable {
    /** One message of a chat. */
    record Message(String role, String content) {}

    /** What to generate. */
    record Request(String prompt, int maxTokens, float temperature, float topP, List<String> stop, Integer seed,
                   Sampling sampling) {
        Request(String prompt, int maxTokens, float temperature, float topP, List<String> stop, Integer seed) {
            this(prompt, maxTokens, temperature, topP, stop, seed, Sampling.NONE);
        }

        Request withSeed(Integer newSeed) {
            return new Request(prompt, maxTokens, temperature, topP, stop, newSeed, sampling);
        }

        Request withPrompt(String newPrompt) {
            return new Request(newPrompt, maxTokens, temperature, topP, stop, seed, sampling);
        }
    }

    /**
     * The rest of the sampling settings (null or empty: llama.cpp's default).
     *
     * @param grammar   a llama.cpp grammar the text must follow (response_format)
     * @param logitBias token id to bias added to its logit (OpenAI's -100..100)
     */
    record Sampling(String grammar, Float presencePenalty, Float frequencyPenalty, Map<Integer, Float> logitBias,
                    Integer topK, Float minP) {
        static final Sampling NONE = new Sampling(null, null, null, Map.of(), null, null);

        Sampling {
            logitBias = logitBias == null ? Map.of() : Map.copyOf(logitBias);
        }
    }

    /** The finished generation. finishReason is "stop" (end of text or a stop string) or "length". */
    record Result(String text, int promptTokens, int completionTokens, String finishReason) {}

    /** Receives each token's text as it is generated; throwing IOException (the client left) cancels the generation. */
    interface TokenSink {
        void accept(String token) throws IOException;
    }

    final String servedName;
    final int slotContext;
    final int slots;
    /** Token ids are 0 .. vocabulary-1 (a client's ids are checked: the binding aborts on one out of range). */
    final long vocabulary;
    private final LlamaModel model;
    private final Path gguf;
    private final int threads;
    /** The pooling type the GGUF declares (an embedding model), else 0. */
    final int pooling;
    /** Made on the first request for embeddings; null until then. */
    private LogitScorer embedder;
    /** Made on the first request for logprobs (a second model handle and context); null until then. */
    private Logprobs logprobs;
    /** Generations started and not finished: those beyond the slot count wait for one. */
    private final java.util.concurrent.atomic.AtomicInteger generating = new java.util.concurrent.atomic.AtomicInteger();

    Engine(Path gguf, String servedName, int contextSize, int parallel, int threads) {
        this.servedName = servedName;
        this.slotContext = contextSize / parallel;
        this.slots = parallel;
        this.gguf = gguf;
        this.threads = threads;
        long tokens;
        int pool = 0;
        try {
            GgufMetadata metadata = GgufMetadata.read(gguf);
            tokens = metadata.vocabularySize();
            pool = metadata.poolingType();
        } catch (IOException e) {
            // llama.cpp may still load what this small reader cannot: serve it, only without the token-id check.
            System.out.println("[tether engine] cannot read the vocabulary size from " + gguf + " (" + e.getMessage()
                    + "): token ids from clients are not checked");
            tokens = -1;
        }
        this.vocabulary = tokens;
        this.pooling = pool;
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

    int[] tokenize(String text) {
        return text.isEmpty() ? new int[0] : model.encode(text);
    }

    /** The text of token ids; an id outside the vocabulary is a 400 (llama.cpp would abort on it). */
    String detokenize(int[] tokens) {
        for (int t : tokens) {
            if (t < 0 || (vocabulary > 0 && t >= vocabulary)) {
                throw ApiError.badRequest("token id " + t + " is not in this model's vocabulary (0.." + (vocabulary - 1) + ")");
            }
        }
        return tokens.length == 0 ? "" : model.decode(tokens);
    }

    /** The logprobs path (see {@link LogitScorer}), set up on first use; a 400 saying why if it cannot be. */
    synchronized Logprobs logprobs() {
        if (logprobs == null) {
            String dir = System.getProperty("de.kherud.llama.lib.path");
            if (dir == null) {
                throw ApiError.badRequest("logprobs are not available: the llama.cpp library's location is unknown");
            }
            try {
                logprobs = new Logprobs(this, new LogitScorer(Path.of(dir, System.mapLibraryName("jllama")), gguf, slotContext,
                        threads));
            } catch (IllegalStateException e) {
                throw ApiError.badRequest("logprobs are not available with this llama.cpp build: " + e.getMessage());
            }
        }
        return logprobs;
    }

    /**
     * The pooled, L2-normalized embedding of tokens (an embedding GGUF only: one that declares a pooling type),
     * through llama.cpp's C API as {@link LogitScorer} does (the binding aborts computing embeddings).
     */
    float[] embed(int[] tokens) {
        LogitScorer e;
        synchronized (this) {
            if (pooling <= 0) {
                throw ApiError.badRequest("model '" + servedName + "' is not an embedding model (its GGUF declares no "
                        + "pooling type): /v1/embeddings needs an embedding GGUF");
            }
            if (pooling > 3) {
                throw ApiError.badRequest("model '" + servedName + "' declares pooling type " + pooling
                        + " (a reranker's): /v1/embeddings takes mean, cls or last pooling");
            }
            if (embedder == null) {
                String dir = System.getProperty("de.kherud.llama.lib.path");
                try {
                    embedder = new LogitScorer(Path.of(dir, System.mapLibraryName("jllama")), gguf, slotContext, threads, pooling);
                } catch (IllegalStateException | NullPointerException x) {
                    throw ApiError.badRequest("embeddings are not available with this llama.cpp build: " + x.getMessage());
                }
            }
            e = embedder;
        }
        if (tokens.length > slotContext) {
            throw ApiError.badRequest("an input has " + tokens.length + " tokens but this server's context holds "
                    + slotContext + " per request");
        }
        float[] vector = e.embed(tokens);
        double norm = 0;
        for (float v : vector) {
            norm += v * v;
        }
        norm = Math.sqrt(norm);
        if (norm > 0) {
            for (int i = 0; i < vector.length; i++) {
                vector[i] = (float) (vector[i] / norm);
            }
        }
        return vector;
    }

    /** Slots decoding now (an estimate from the requests in flight: the binding does not report its slots). */
    int busySlots() {
        return Math.min(slots, generating.get());
    }

    /** Generations waiting for a free slot. */
    int waiting() {
        return Math.max(0, generating.get() - slots);
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
        if (maxTokens == 0) {
            return new Result("", promptTokens, 0, "length");   // echo with max_tokens 0: the prompt only
        }
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
        Sampling sampling = request.sampling();
        if (sampling.grammar() != null) {
            parameters.setGrammar(sampling.grammar());
        }
        if (sampling.presencePenalty() != null) {
            parameters.setPresencePenalty(sampling.presencePenalty());
        }
        if (sampling.frequencyPenalty() != null) {
            parameters.setFrequencyPenalty(sampling.frequencyPenalty());
        }
        if (!sampling.logitBias().isEmpty()) {
            parameters.setTokenIdBias(sampling.logitBias());
        }
        if (sampling.topK() != null) {
            parameters.setTopK(sampling.topK());
        }
        if (sampling.minP() != null) {
            parameters.setMinP(sampling.minP());
        }
        generating.incrementAndGet();
        try {
            return run(parameters, maxTokens, promptTokens, sink);
        } finally {
            generating.decrementAndGet();
        }
    }

    private Result run(InferenceParameters parameters, int maxTokens, int promptTokens, TokenSink sink) throws IOException {
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
