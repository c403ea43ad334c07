package dev.tether.server.embedded;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/** The engine's counters, served at {@code GET /metrics} in Prometheus' text format (version 0.0.4). */
final class Metrics {
    /** Routes counted by name; anything else (404s) counts as "other", so a scan cannot grow the label set. */
    static final java.util.Set<String> ROUTES = java.util.Set.of("/health", "/metrics", "/v1/models", "/v1/models/{id}",
            "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize");

    private final Map<String, LongAdder> requests = new ConcurrentHashMap<>();
    private final LongAdder promptTokens = new LongAdder();
    private final LongAdder completionTokens = new LongAdder();
    private final LongAdder generations = new LongAdder();

    void request(String route, int status) {
        String key = (ROUTES.contains(route) ? route : "other") + "\u0000" + status;
        requests.computeIfAbsent(key, k -> new LongAdder()).increment();
    }

    void generated(int prompt, int completion) {
        promptTokens.add(prompt);
        completionTokens.add(completion);
        generations.increment();
    }

    String render(Supplier<Engine> loaded) {
        StringBuilder out = new StringBuilder();
        out.append("# HELP tether_requests_total HTTP requests answered, by route and status.\n")
                .append("# TYPE tether_requests_total counter\n");
        new TreeMap<>(requests).forEach((key, n) -> {
            String[] parts = key.split("\u0000");
            out.append("tether_requests_total{route=\"").append(parts[0]).append("\",status=\"").append(parts[1])
                    .append("\"} ").append(n.sum()).append('\n');
        });
        counter(out, "tether_prompt_tokens_total", "Prompt tokens of finished generations.", promptTokens.sum());
        counter(out, "tether_completion_tokens_total", "Tokens generated.", completionTokens.sum());
        counter(out, "tether_generations_total", "Generations finished (one per choice).", generations.sum());
        Engine engine = loaded.get();
        gauge(out, "tether_slots_total", "Requests the engine decodes at once (--parallel).", engine == null ? 0 : engine.slots);
        gauge(out, "tether_slots_busy", "Slots decoding now.", engine == null ? 0 : engine.busySlots());
        gauge(out, "tether_requests_waiting", "Generations waiting for a free slot.", engine == null ? 0 : engine.waiting());
        gauge(out, "tether_model_loaded", "1 once the model is loaded.", engine == null ? 0 : 1);
        return out.toString();
    }

    private static void counter(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n')
                .append("# TYPE ").append(name).append(" counter\n").append(name).append(' ').append(value).append('\n');
    }

    private static void gauge(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n')
                .append("# TYPE ").append(name).append(" gauge\n").append(name).append(' ').append(value).append('\n');
    }
}
