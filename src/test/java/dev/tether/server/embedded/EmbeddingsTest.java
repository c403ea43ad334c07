package dev.tether.server.embedded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tether.server.Profiles;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.TetherHome;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code POST /v1/embeddings} for a GGUF that declares a pooling type: tiny's weights with
 * {@code llama.pooling_type} set (llama.cpp itself ignores that key for a llama; the engine reads it and
 * asks for that pooling). The vectors mean nothing; what is checked is their shape, that they are
 * deterministic and normalized, and that the declared pooling is the one applied.
 */
class EmbeddingsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MEAN = 1, CLS = 2, LAST = 3;

    @TempDir
    Path home;

    private Path embeddingModel(int pooling) throws Exception {
        return Files.write(home.resolve("tiny-pool" + pooling + ".gguf"), TinyModel.bytes(Map.of("llama.pooling_type", pooling)));
    }

    private static List<Float> floats(JsonNode array) {
        List<Float> out = new ArrayList<>();
        array.forEach(v -> out.add((float) v.asDouble()));
        return out;
    }

    @Test
    void anEmbeddingGgufIsServedAtV1Embeddings() throws Exception {
        Path model = embeddingModel(MEAN);
        try (ServerManager manager = new ServerManager(new TetherHome(home.resolve("state")), ServerEvents.NONE);
             HttpClient http = HttpClient.newHttpClient()) {
            ServerHandle server = manager.start(new ServerSpec(model.toString(), Profiles.builtIns().find("embedded").orElseThrow(),
                    "127.0.0.1", ServerSpec.AUTO_PORT, Duration.ofSeconds(5)));
            java.util.function.Function<Object, HttpResponse<String>> post = body -> {
                try {
                    return http.send(HttpRequest.newBuilder(URI.create(server.baseUrl() + "/v1/embeddings"))
                            .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build(),
                            HttpResponse.BodyHandlers.ofString());
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            };
            HttpResponse<String> response = post.apply(Map.of("model", model.toString(),
                    "input", List.of("hello world", "hello world", "something else")));
            assertThat(response.statusCode()).as(response.body()).isEqualTo(200);
            JsonNode body = JSON.readTree(response.body());
            JsonNode data = body.get("data");
            assertThat(data).hasSize(3);
            List<List<Float>> vectors = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                assertThat(data.get(i).get("index").asInt()).isEqualTo(i);
                assertThat(data.get(i).get("object").asText()).isEqualTo("embedding");
                List<Float> v = floats(data.get(i).get("embedding"));
                assertThat(v).hasSize(TinyModel.EMBED);
                assertThat(Math.sqrt(v.stream().mapToDouble(x -> x * x).sum())).isCloseTo(1.0, within(1e-4));
                vectors.add(v);
            }
            assertThat(vectors.get(1)).isEqualTo(vectors.get(0));
            assertThat(vectors.get(2)).isNotEqualTo(vectors.get(0));
            assertThat(body.get("usage").get("prompt_tokens").asInt()).isPositive();

            // base64 (the openai npm client's default): the same floats, little-endian.
            JsonNode encoded = JSON.readTree(post.apply(Map.of("model", model.toString(), "input", "hello world",
                    "encoding_format", "base64")).body());
            ByteBuffer bytes = ByteBuffer.wrap(Base64.getDecoder().decode(encoded.get("data").get(0).get("embedding").asText()))
                    .order(ByteOrder.LITTLE_ENDIAN);
            List<Float> decoded = new ArrayList<>();
            while (bytes.hasRemaining()) {
                decoded.add(bytes.getFloat());
            }
            assertThat(decoded).isEqualTo(vectors.get(0));

            HttpResponse<String> bad = post.apply(Map.of("model", model.toString(), "input", "x", "dimensions", 8));
            assertThat(bad.statusCode()).isEqualTo(400);
            assertThat(bad.body()).contains("dimensions is not supported");
            assertThat(post.apply(Map.of("model", model.toString(), "input", "")).body()).contains("nothing to embed");
        }
    }

    @Test
    void theDeclaredPoolingIsTheOneApplied() throws Exception {
        Path library = NativeLibrary.prepare(home.resolve("native"));
        System.load(library.toString());
        int a = 'a', b = 'b', c = 'c', d = 'd';
        try (LogitScorer mean = new LogitScorer(library, embeddingModel(MEAN), 256, 1, MEAN);
             LogitScorer cls = new LogitScorer(library, embeddingModel(CLS), 256, 1, CLS);
             LogitScorer last = new LogitScorer(library, embeddingModel(LAST), 256, 1, LAST)) {
            float[] bFirst = last.embed(new int[] {b});
            float[] one = cls.embed(new int[] {a});
            // One token: mean, first and last are all that token's state.
            assertThat(mean.embed(new int[] {a})).containsExactly(one, within(1e-5f));
            assertThat(last.embed(new int[] {a})).containsExactly(one, within(1e-5f));
            // The model is causal: the first token's state does not depend on what follows it...
            assertThat(cls.embed(new int[] {a, b, c, d})).containsExactly(one, within(1e-5f));
            // ...while the last token's, and the mean, do.
            assertThat(last.embed(new int[] {a, b, c, d})).isNotEqualTo(one);
            assertThat(mean.embed(new int[] {a, b, c, d})).isNotEqualTo(one);
            // Each call is a fresh sequence: [b] after all those gives what it gave first.
            assertThat(last.embed(new int[] {b})).containsExactly(bFirst, within(0f));
        }
    }
}
