package dev.tether.server.embedded;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The {@code tiny} model: a llama-architecture GGUF with random weights (about half a megabyte),
 * generated deterministically — the same bytes on every machine — so the whole pipeline runs
 * offline. <b>Its text is meaningless</b>: it exists to exercise servers and pipelines, not to
 * answer anything.
 *
 * <p>Vocabulary: the 256 bytes in GPT-2's byte-level form, a few merges, and the ChatML control
 * tokens; chat template: ChatML. The weights are random except for one deliberate bias: every token
 * embedding carries a large constant in dimension 0, and the output matrix weighs that dimension
 * positively for printable ASCII and strongly negatively for everything else, so generated text is
 * printable whatever the prompt.
 */
public final class TinyModel {
    public static final String NAME = "tiny";
    /** Bump when the generator changes: a new file name, never a changed file under an old name. */
    static final int VERSION = 2;

    static final int EMBED = 64;
    static final int LAYERS = 2;
    static final int HEADS = 4;
    static final int FFN = 128;
    /** Training context the GGUF declares; each of the engine's slots gets this many tokens by default. */
    static final int CONTEXT = 4096;
    private static final long SEED = 0x7e7e_7e7eL;

    /**
     * 400 byte-level BPE merges (printable ASCII only), learned once at development time from the
     * bundled wiki sample: they make English text about 2.3 times fewer tokens than raw bytes, which
     * makes the tiny model's prompts that much cheaper to process. Fixed in a resource, so the model
     * does not change when the sample does.
     */
    static final String[] MERGES = loadMerges();
    static final String BOS = "<|endoftext|>";
    static final String IM_START = "<|im_start|>";
    static final String IM_END = "<|im_end|>";
    static final String CHAT_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
            + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
            + "{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private TinyModel() {}

    private static String[] loadMerges() {
        try (var in = TinyModel.class.getResourceAsStream("tiny-merges.txt")) {
            if (in == null) {
                throw new IllegalStateException("tiny-merges.txt is missing from this build");
            }
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).lines()
                    .filter(l -> !l.isBlank()).toArray(String[]::new);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** The file under the models directory, generated on first use (atomically: a racing writer is harmless). */
    public static Path ensure(Path modelsDir) throws IOException {
        Path file = modelsDir.resolve("tether-tiny-v" + VERSION + ".gguf");
        if (Files.isRegularFile(file)) {
            return file;
        }
        Files.createDirectories(modelsDir);
        Path temp = Files.createTempFile(modelsDir, ".tiny-", ".tmp");
        try {
            Files.write(temp, bytes());
            Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temp);
        }
        return file;
    }

    /** The GGUF bytes (deterministic). */
    static byte[] bytes() {
        return bytes(java.util.Map.of());
    }

    /** The GGUF bytes with more metadata (tests make variants of tiny, such as one that declares a pooling type). */
    static byte[] bytes(java.util.Map<String, Object> extraMetadata) {
        List<String> tokens = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(byteToken(b));
            types.add(1);   // normal
        }
        for (String merge : MERGES) {
            tokens.add(merge.replace(" ", ""));
            types.add(1);
        }
        for (String special : new String[] {BOS, IM_START, IM_END}) {
            tokens.add(special);
            types.add(3);   // control
        }
        int vocab = tokens.size();
        int bos = tokens.indexOf(BOS);
        int eos = tokens.indexOf(IM_END);

        SplittableRandom random = new SplittableRandom(SEED);
        GgufWriter gguf = new GgufWriter()
                .put("general.architecture", "llama")
                .put("general.name", "tether-tiny (random weights, meaningless output)")
                .put("general.file_type", 0)
                .put("llama.context_length", CONTEXT)
                .put("llama.embedding_length", EMBED)
                .put("llama.block_count", LAYERS)
                .put("llama.feed_forward_length", FFN)
                .put("llama.attention.head_count", HEADS)
                .put("llama.attention.head_count_kv", HEADS)
                .put("llama.rope.dimension_count", EMBED / HEADS)
                .put("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .put("llama.vocab_size", vocab)
                .put("tokenizer.ggml.model", "gpt2")
                .put("tokenizer.ggml.pre", "gpt-2")
                .put("tokenizer.ggml.tokens", tokens.toArray(String[]::new))
                .put("tokenizer.ggml.token_type", types.stream().mapToInt(Integer::intValue).toArray())
                .put("tokenizer.ggml.merges", MERGES)
                .put("tokenizer.ggml.bos_token_id", bos)
                .put("tokenizer.ggml.eos_token_id", eos)
                .put("tokenizer.ggml.add_bos_token", false)
                .put("tokenizer.chat_template", CHAT_TEMPLATE);
        extraMetadata.forEach(gguf::put);

        float[] embeddings = uniform(random, vocab * EMBED, 0.05f);   // vocab = 256 bytes + merges + 3 control tokens
        for (int t = 0; t < vocab; t++) {
            embeddings[t * EMBED] = 1.0f;   // the constant that the output bias reads
        }
        gguf.tensor("token_embd.weight", embeddings, EMBED, vocab);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "blk." + layer + ".";
            gguf.tensor(p + "attn_norm.weight", ones(EMBED), EMBED)
                    .tensor(p + "attn_q.weight", uniform(random, EMBED * EMBED, 0.05f), EMBED, EMBED)
                    .tensor(p + "attn_k.weight", uniform(random, EMBED * EMBED, 0.05f), EMBED, EMBED)
                    .tensor(p + "attn_v.weight", uniform(random, EMBED * EMBED, 0.05f), EMBED, EMBED)
                    .tensor(p + "attn_output.weight", uniform(random, EMBED * EMBED, 0.05f), EMBED, EMBED)
                    .tensor(p + "ffn_norm.weight", ones(EMBED), EMBED)
                    .tensor(p + "ffn_gate.weight", uniform(random, EMBED * FFN, 0.05f), EMBED, FFN)
                    .tensor(p + "ffn_up.weight", uniform(random, EMBED * FFN, 0.05f), EMBED, FFN)
                    .tensor(p + "ffn_down.weight", uniform(random, FFN * EMBED, 0.05f), FFN, EMBED);
        }
        gguf.tensor("output_norm.weight", ones(EMBED), EMBED);
        // Small random weights give near-even odds among printable tokens (varied text when sampling);
        // dimension 0 favours letters and spaces a little, and rules out everything unprintable.
        float[] output = uniform(random, vocab * EMBED, 0.3f);
        for (int t = 0; t < vocab; t++) {
            boolean wordy = (t >= 'a' && t <= 'z') || t == ' ' || (t >= 256 && t < 256 + MERGES.length);
            boolean printable = t >= 0x20 && t <= 0x7e;
            output[t * EMBED] = wordy ? 0.6f : printable ? 0.4f : t == eos ? 0.1f : -5f;
        }
        gguf.tensor("output.weight", output, EMBED, vocab);
        return gguf.toBytes();
    }

    private static float[] uniform(SplittableRandom random, int n, float scale) {
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) ((random.nextDouble() * 2 - 1) * scale);
        }
        return values;
    }

    private static float[] ones(int n) {
        float[] values = new float[n];
        java.util.Arrays.fill(values, 1f);
        return values;
    }

    /** GPT-2's byte-to-unicode mapping: printable bytes stand for themselves, the rest move to U+0100 and up. */
    static String byteToken(int b) {
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            return String.valueOf((char) b);
        }
        int shifted = 0;
        for (int c = 0; c < b; c++) {
            if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) {
                shifted++;
            }
        }
        return String.valueOf((char) (256 + shifted));
    }
}
