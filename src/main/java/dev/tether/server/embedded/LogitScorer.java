package dev.tether.server.embedded;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * Token log-probabilities straight from llama.cpp's C API (through the FFM API, against the
 * {@code llama_*} symbols that the binding's {@code libjllama.so} exports), because the binding itself
 * cannot give them: de.kherud:llama 4.2.0 reads token probabilities under keys ("probs", "tok_str") that
 * its bundled llama.cpp no longer writes, and asking for any aborts the process.
 *
 * <p>It holds its own model handle (the GGUF is mmapped: the weights' pages are shared with the
 * engine's copy) and one context with a single sequence; {@link #decode} feeds tokens and returns the
 * logits of each. Calls are serialized: this is the slow, exact path for requests that ask for logprobs.
 *
 * <p>Only the first, long-stable fields of {@code llama_context_params} are written (n_ctx, n_batch,
 * n_ubatch, n_seq_max, n_threads, n_threads_batch); the defaults read back are checked for sanity, so a
 * binding with another layout fails here with a message instead of corrupting memory later.
 */
final class LogitScorer implements AutoCloseable {
    /** Tokens per llama_decode call: bounds the logits buffer to BATCH x vocabulary floats. */
    static final int BATCH = 512;
    /** Larger than either params struct of this llama.cpp (72 and ~120 bytes): such structs pass in memory. */
    private static final StructLayout PARAMS = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(64, ValueLayout.JAVA_LONG));
    /** {@code struct llama_batch}: n_tokens, then six pointers. */
    private static final StructLayout LLAMA_BATCH = MemoryLayout.structLayout(ValueLayout.JAVA_INT, MemoryLayout.paddingLayout(4),
            ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS);

    private final Arena arena = Arena.ofShared();
    private final MethodHandle decode;
    private final MethodHandle logitsIth;
    private final MethodHandle kvClear;
    private final MethodHandle isEog;
    private final MethodHandle free;
    private final MethodHandle modelFree;
    private final MemorySegment model;
    private final MemorySegment context;
    private final MemorySegment vocab;
    private final MethodHandle embeddingsSeq;
    final int vocabulary;
    final int dimensions;
    final int contextSize;

    LogitScorer(Path library, Path gguf, int contextSize, int threads) {
        this(library, gguf, contextSize, threads, 0);
    }

    /**
     * @param pooling 0 for logits; else an embedding context pooling each sequence this way (llama.cpp's
     *                {@code llama_pooling_type}: 1 mean, 2 cls, 3 last), its batch the whole context (a pooled
     *                sequence must be decoded in one piece)
     */
    LogitScorer(Path library, Path gguf, int contextSize, int threads, int pooling) {
        Linker linker = Linker.nativeLinker();
        SymbolLookup lib = SymbolLookup.libraryLookup(library, arena);
        var modelDefaults = handle(linker, lib, "llama_model_default_params", FunctionDescriptor.of(PARAMS));
        var load = handle(linker, lib, "llama_model_load_from_file", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, PARAMS));
        var contextDefaults = handle(linker, lib, "llama_context_default_params", FunctionDescriptor.of(PARAMS));
        var init = handle(linker, lib, "llama_init_from_model", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, PARAMS));
        var getVocab = handle(linker, lib, "llama_model_get_vocab", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        var nTokens = handle(linker, lib, "llama_vocab_n_tokens", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        decode = handle(linker, lib, "llama_decode", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, LLAMA_BATCH));
        logitsIth = handle(linker, lib, "llama_get_logits_ith", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        kvClear = handle(linker, lib, "llama_kv_self_clear", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        isEog = handle(linker, lib, "llama_vocab_is_eog", FunctionDescriptor.of(ValueLayout.JAVA_BOOLEAN, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        free = handle(linker, lib, "llama_free", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        modelFree = handle(linker, lib, "llama_model_free", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
        var setEmbeddings = handle(linker, lib, "llama_set_embeddings", FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.JAVA_BOOLEAN));
        var nEmbd = handle(linker, lib, "llama_model_n_embd", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        embeddingsSeq = handle(linker, lib, "llama_get_embeddings_seq", FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
        try {
            MemorySegment modelParams = (MemorySegment) modelDefaults.invokeExact((java.lang.foreign.SegmentAllocator) arena);
            model = (MemorySegment) load.invokeExact(arena.allocateFrom(gguf.toString()), modelParams);
            if (model.equals(MemorySegment.NULL)) {
                throw new IllegalStateException("llama.cpp could not load " + gguf + " a second time for logprobs");
            }
            MemorySegment params = (MemorySegment) contextDefaults.invokeExact((java.lang.foreign.SegmentAllocator) arena);
            int defaultBatch = params.get(ValueLayout.JAVA_INT, 4);
            int defaultSeqMax = params.get(ValueLayout.JAVA_INT, 12);
            if (defaultSeqMax != 1 || defaultBatch < 1 || defaultBatch > 1 << 20) {
                throw new IllegalStateException("llama_context_params of this llama.cpp does not have the expected layout "
                        + "(n_batch " + defaultBatch + ", n_seq_max " + defaultSeqMax + ")");
            }
            int batch = pooling > 0 ? contextSize : BATCH;
            params.set(ValueLayout.JAVA_INT, 0, contextSize);   // n_ctx
            params.set(ValueLayout.JAVA_INT, 4, batch);         // n_batch
            params.set(ValueLayout.JAVA_INT, 8, batch);         // n_ubatch
            params.set(ValueLayout.JAVA_INT, 16, threads);      // n_threads
            params.set(ValueLayout.JAVA_INT, 20, threads);      // n_threads_batch
            if (pooling > 0) {
                // rope_scaling_type, pooling_type and attention_type follow n_threads_batch, each -1 (unspecified) by default.
                if (params.get(ValueLayout.JAVA_INT, 24) != -1 || params.get(ValueLayout.JAVA_INT, 28) != -1
                        || params.get(ValueLayout.JAVA_INT, 32) != -1) {
                    throw new IllegalStateException("llama_context_params of this llama.cpp does not have the expected layout "
                            + "(no unspecified pooling_type at offset 28)");
                }
                params.set(ValueLayout.JAVA_INT, 28, pooling);
            }
            context = (MemorySegment) init.invokeExact(model, params);
            if (context.equals(MemorySegment.NULL)) {
                throw new IllegalStateException("llama.cpp could not create a context for logprobs");
            }
            vocab = (MemorySegment) getVocab.invokeExact(model);
            vocabulary = (int) nTokens.invokeExact(vocab);
            dimensions = (int) nEmbd.invokeExact(model);
            if (pooling > 0) {
                setEmbeddings.invokeExact(context, true);
            }
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        this.contextSize = contextSize;
    }

    private static MethodHandle handle(Linker linker, SymbolLookup lib, String name, FunctionDescriptor descriptor) {
        return linker.downcallHandle(lib.find(name).orElseThrow(() -> new IllegalStateException(
                "the llama.cpp library has no " + name)), descriptor);
    }

    /** Receives the logits after each token (its row of {@link #vocabulary} floats, valid only during the call). */
    interface Rows {
        void row(int position, MemorySegment logits);
    }

    /** Forgets every token fed so far. */
    synchronized void reset() {
        try {
            kvClear.invokeExact(context);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Feeds {@code tokens} at positions {@code start, start+1, ...}; calls {@code rows} (unless null) for each
     * position from {@code firstRow} on (earlier ones compute no logits).
     */
    synchronized void decode(int[] tokens, int start, int firstRow, Rows rows) {
        if (start + tokens.length > contextSize) {
            throw ApiError.badRequest("the prompt and completion need " + (start + tokens.length) + " tokens but logprobs are "
                    + "computed in a context of " + contextSize);
        }
        try (Arena call = Arena.ofConfined()) {
            for (int from = 0; from < tokens.length; from += BATCH) {
                int n = Math.min(BATCH, tokens.length - from);
                MemorySegment token = call.allocate(ValueLayout.JAVA_INT, n);
                MemorySegment pos = call.allocate(ValueLayout.JAVA_INT, n);
                MemorySegment nSeqId = call.allocate(ValueLayout.JAVA_INT, n);
                MemorySegment seqIds = call.allocate(ValueLayout.ADDRESS, n);
                MemorySegment seqZero = call.allocate(ValueLayout.JAVA_INT);
                MemorySegment logits = call.allocate(ValueLayout.JAVA_BYTE, n);
                for (int i = 0; i < n; i++) {
                    int p = start + from + i;
                    token.setAtIndex(ValueLayout.JAVA_INT, i, tokens[from + i]);
                    pos.setAtIndex(ValueLayout.JAVA_INT, i, p);
                    nSeqId.setAtIndex(ValueLayout.JAVA_INT, i, 1);
                    seqIds.setAtIndex(ValueLayout.ADDRESS, i, seqZero);
                    logits.set(ValueLayout.JAVA_BYTE, i, (byte) (p >= firstRow ? 1 : 0));
                }
                MemorySegment batch = call.allocate(LLAMA_BATCH);
                batch.set(ValueLayout.JAVA_INT, 0, n);
                batch.set(ValueLayout.ADDRESS, 8, token);
                batch.set(ValueLayout.ADDRESS, 16, MemorySegment.NULL);
                batch.set(ValueLayout.ADDRESS, 24, pos);
                batch.set(ValueLayout.ADDRESS, 32, nSeqId);
                batch.set(ValueLayout.ADDRESS, 40, seqIds);
                batch.set(ValueLayout.ADDRESS, 48, logits);
                int status = (int) decode.invokeExact(context, batch);
                if (status != 0) {
                    throw new ApiError(500, "server_error", null, "llama_decode failed (status " + status + ") while computing logprobs");
                }
                for (int i = 0; i < n; i++) {
                    int p = start + from + i;
                    if (p >= firstRow && rows != null) {
                        MemorySegment row = (MemorySegment) logitsIth.invokeExact(context, i);
                        rows.row(p, row.reinterpret((long) vocabulary * Float.BYTES));
                    }
                }
            }
        } catch (ApiError e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The pooled embedding of {@code tokens} (an embedding context only), from a fresh sequence. */
    synchronized float[] embed(int[] tokens) {
        if (tokens.length == 0) {
            throw ApiError.badRequest("an embedding input must have at least one token");
        }
        reset();
        decode(tokens, 0, 0, null);   // a pooling context outputs every token; it has no logits to read
        try {
            MemorySegment pooled = (MemorySegment) embeddingsSeq.invokeExact(context, 0);
            if (pooled.equals(MemorySegment.NULL)) {
                throw new ApiError(500, "server_error", null, "llama.cpp returned no pooled embedding");
            }
            float[] vector = new float[dimensions];
            MemorySegment.copy(pooled.reinterpret((long) dimensions * Float.BYTES), ValueLayout.JAVA_FLOAT, 0, vector, 0, dimensions);
            return vector;
        } catch (ApiError e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    boolean isEndOfGeneration(int token) {
        try {
            return (boolean) isEog.invokeExact(vocab, token);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public synchronized void close() {
        try {
            free.invokeExact(context);
            modelFree.invokeExact(model);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
        arena.close();
    }
}
