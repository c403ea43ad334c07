package dev.tether.server.embedded;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Generation with token log-probabilities, on a {@link LogitScorer}: the prompt is fed once (with logits
 * for every position when its own logprobs are wanted, as lm-eval's loglikelihood requests need), then
 * tokens are sampled here, in Java, from the logits (temperature, top_p, seed), one llama_decode per token.
 * Logprobs are those of the model's distribution before temperature and top_p, as OpenAI and vLLM report.
 */
final class Logprobs {
    /** One token with its logprob (null for a prompt's first token: nothing precedes it) and the most likely alternatives. */
    record Token(int id, String piece, Float logprob, List<Alternative> top) {}

    record Alternative(int id, String piece, float logprob) {}

    /** @param prompt the prompt's tokens with logprobs (empty unless asked for) */
    record Scored(List<Token> prompt, List<Token> completion, String text, int promptTokens, String finishReason) {}

    /** What to generate; stop strings end the text as in the engine's own path. */
    record Settings(int maxTokens, float temperature, float topP, Integer seed, List<String> stop, int topN) {}

    private final Engine engine;
    private final LogitScorer scorer;

    Logprobs(Engine engine, LogitScorer scorer) {
        this.engine = engine;
        this.scorer = scorer;
    }

    Scored run(int[] prompt, boolean promptLogprobs, Settings settings) {
        if (prompt.length == 0) {
            throw ApiError.badRequest("logprobs need a prompt of at least one token");
        }
        int maxTokens = Math.min(settings.maxTokens(), scorer.contextSize - prompt.length);
        if (maxTokens < 0 || prompt.length >= scorer.contextSize) {
            throw ApiError.badRequest("the prompt has " + prompt.length + " tokens but this server's context holds "
                    + scorer.contextSize + " per request; shorten the prompt or start the server with a larger --ctx");
        }
        synchronized (scorer) {
            scorer.reset();
            List<Token> promptTokens = new ArrayList<>();
            if (promptLogprobs) {
                promptTokens.add(new Token(prompt[0], piece(prompt[0]), null, null));
            }
            float[][] last = new float[1][];
            scorer.decode(prompt, 0, promptLogprobs ? 0 : prompt.length - 1, (position, logits) -> {
                float[] row = logSoftmax(logits, scorer.vocabulary);
                if (position + 1 < prompt.length) {
                    int next = prompt[position + 1];
                    promptTokens.add(new Token(next, piece(next), row[next], top(row, settings.topN())));
                } else {
                    last[0] = row;
                }
            });
            SplittableRandom random = settings.seed() != null ? new SplittableRandom(settings.seed()) : new SplittableRandom();
            List<Token> completion = new ArrayList<>();
            List<Integer> ids = new ArrayList<>();
            String finish = "length";
            String text = "";
            boolean stopped = false;   // by a stop string: the text is cut there
            for (int step = 0; step < maxTokens; step++) {
                float[] row = last[0];
                int next = sample(row, settings.temperature(), settings.topP(), random);
                if (scorer.isEndOfGeneration(next)) {
                    finish = "stop";
                    break;
                }
                completion.add(new Token(next, piece(next), row[next], top(row, settings.topN())));
                ids.add(next);
                if (!settings.stop().isEmpty()) {   // the text so far, decoded whole (a character may span tokens)
                    text = engine.detokenize(ids.stream().mapToInt(Integer::intValue).toArray());
                    int cut = stopAt(text, settings.stop());
                    if (cut >= 0) {
                        text = text.substring(0, cut);
                        finish = "stop";
                        stopped = true;
                        break;
                    }
                }
                if (step + 1 < maxTokens) {
                    scorer.decode(new int[] {next}, prompt.length + step, prompt.length + step,
                            (position, logits) -> last[0] = logSoftmax(logits, scorer.vocabulary));
                }
            }
            if (!stopped) {
                text = engine.detokenize(ids.stream().mapToInt(Integer::intValue).toArray());
            }
            return new Scored(promptTokens, completion, text, prompt.length, finish);
        }
    }

    private String piece(int token) {
        return engine.detokenize(new int[] {token});
    }

    private static int stopAt(String text, List<String> stops) {
        int at = -1;
        for (String s : stops) {
            int i = s.isEmpty() ? -1 : text.indexOf(s);
            if (i >= 0 && (at < 0 || i < at)) {
                at = i;
            }
        }
        return at;
    }

    static float[] logSoftmax(MemorySegment logits, int vocabulary) {
        float[] row = new float[vocabulary];
        MemorySegment.copy(logits, ValueLayout.JAVA_FLOAT, 0, row, 0, vocabulary);
        float max = Float.NEGATIVE_INFINITY;
        for (float v : row) {
            max = Math.max(max, v);
        }
        double sum = 0;
        for (float v : row) {
            sum += Math.exp(v - max);
        }
        float logSum = (float) (max + Math.log(sum));
        for (int i = 0; i < row.length; i++) {
            row[i] -= logSum;
        }
        return row;
    }

    private List<Alternative> top(float[] row, int n) {
        if (n <= 0) {
            return List.of();
        }
        int[] best = new int[Math.min(n, row.length)];
        Arrays.fill(best, -1);
        for (int t = 0; t < row.length; t++) {
            for (int k = 0; k < best.length; k++) {
                if (best[k] < 0 || row[t] > row[best[k]]) {
                    System.arraycopy(best, k, best, k + 1, best.length - k - 1);
                    best[k] = t;
                    break;
                }
            }
        }
        List<Alternative> top = new ArrayList<>(best.length);
        for (int t : best) {
            top.add(new Alternative(t, piece(t), row[t]));
        }
        return top;
    }

    /** Greedy at temperature 0; otherwise softmax(logprob / T) restricted to the top_p nucleus. */
    static int sample(float[] logprobs, float temperature, float topP, SplittableRandom random) {
        int argmax = 0;
        for (int i = 1; i < logprobs.length; i++) {
            if (logprobs[i] > logprobs[argmax]) {
                argmax = i;
            }
        }
        if (temperature <= 0) {
            return argmax;
        }
        double[] p = new double[logprobs.length];
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] = Math.exp((logprobs[i] - logprobs[argmax]) / temperature);
            sum += p[i];
        }
        Integer[] order = null;
        int keep = p.length;
        if (topP < 1) {
            order = new Integer[p.length];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            double[] q = p;
            Arrays.sort(order, (a, b) -> Double.compare(q[b], q[a]));
            double cumulative = 0;
            keep = 0;
            while (keep < order.length && (keep == 0 || cumulative < topP * sum)) {
                cumulative += p[order[keep++]];
            }
            sum = cumulative;
        }
        double r = random.nextDouble() * sum;
        for (int k = 0; k < keep; k++) {
            int i = order == null ? k : order[k];
            r -= p[i];
            if (r <= 0) {
                return i;
            }
        }
        return order == null ? keep - 1 : order[keep - 1];
    }
}
