package dev.tether.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tether.client.ClientException.Kind;
import dev.tether.client.CompletionRequest.Message;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The pure parts: back-off, Retry-After, URLs, bodies, error messages, request validation. */
class ClientPartsTest {
    @Test
    void backoffIsFullJitterUnderADoublingCeiling() {
        Duration initial = Duration.ofMillis(100);
        Duration max = Duration.ofSeconds(1);
        for (int retry = 1; retry <= 40; retry++) {
            long ceiling = Math.min(max.toNanos(), initial.toNanos() << Math.min(retry - 1, 20));
            long biggest = 0;
            for (int i = 0; i < 200; i++) {
                long d = Backoff.delayNanos(retry, initial, max, null);
                assertThat(d).isBetween(0L, ceiling);
                biggest = Math.max(biggest, d);
            }
            assertThat(biggest).as("retry %d spreads up to its ceiling", retry).isGreaterThan(ceiling / 2);
        }
        assertThat(Backoff.delayNanos(Integer.MAX_VALUE, initial, max, null)).isBetween(0L, max.toNanos());
    }

    @Test
    void retryAfterWinsButIsCapped() {
        Duration max = Duration.ofSeconds(10);
        assertThat(Backoff.delayNanos(1, Duration.ofMillis(1), max, Duration.ofSeconds(3)))
                .isEqualTo(Duration.ofSeconds(3).toNanos());
        assertThat(Backoff.delayNanos(1, Duration.ofMillis(1), max, Duration.ofSeconds(120))).isEqualTo(max.toNanos());
    }

    @Test
    void retryAfterIsSecondsOrADate() {
        Instant now = Instant.parse("2025-01-01T00:00:00Z");
        assertThat(Backoff.parseRetryAfter(" 7 ", now)).isEqualTo(Duration.ofSeconds(7));
        String date = DateTimeFormatter.RFC_1123_DATE_TIME.format(now.plusSeconds(30).atZone(ZoneOffset.UTC));
        assertThat(Backoff.parseRetryAfter(date, now)).isEqualTo(Duration.ofSeconds(30));
        String past = DateTimeFormatter.RFC_1123_DATE_TIME.format(now.minusSeconds(30).atZone(ZoneOffset.UTC));
        assertThat(Backoff.parseRetryAfter(past, now)).isEqualTo(Duration.ZERO);
        assertThat(Backoff.parseRetryAfter("soon", now)).isNull();
        assertThat(Backoff.parseRetryAfter("-1", now)).isNull();
    }

    @Test
    void endpointsAddV1Once() {
        assertThat(Wire.endpoint("http://h:1", "/completions")).isEqualTo("http://h:1/v1/completions");
        assertThat(Wire.endpoint("http://h:1/", "/completions")).isEqualTo("http://h:1/v1/completions");
        assertThat(Wire.endpoint("http://h:1/v1", "/chat/completions")).isEqualTo("http://h:1/v1/chat/completions");
        assertThat(Wire.endpoint(" http://h:1/v1/ ", "/completions")).isEqualTo("http://h:1/v1/completions");
    }

    @Test
    void errorMessagesComeFromTheShapesServersUse() {
        assertThat(Wire.errorMessage("{\"error\":{\"message\":\"bad model\",\"type\":\"x\"}}")).isEqualTo("bad model");
        assertThat(Wire.errorMessage("{\"error\":\"overloaded\"}")).isEqualTo("overloaded");
        assertThat(Wire.errorMessage("{\"object\":\"error\",\"message\":\"too long\",\"code\":400}")).isEqualTo("too long");
        assertThat(Wire.errorMessage("{\"detail\":\"Not Found\"}")).isEqualTo("Not Found");
        assertThat(Wire.errorMessage("")).isEqualTo("(empty body)");
        String html = "<html>\n<body>" + "x".repeat(500) + "</body></html>";
        assertThat(Wire.errorMessage(html)).startsWith("<html> <body>xx").hasSize(203);
    }

    @Test
    void aGarbageOrEmptyAnswerIsABadResponse() {
        for (String body : List.of("<html>oops</html>", "[1,2]", "{\"choices\":[]}", "{\"choices\":[{\"text\":1}]}",
                "{\"error\":{\"message\":\"engine died\"}}", "")) {
            assertThatThrownBy(() -> Wire.parseCompletion(body, false)).as(body)
                    .isInstanceOfSatisfying(AttemptFailure.class, f -> assertThat(f.kind).isEqualTo(Kind.BAD_RESPONSE));
        }
        assertThatThrownBy(() -> Wire.parseCompletion("{\"choices\":[{\"text\":\"x\"}]}", true))
                .isInstanceOf(AttemptFailure.class);
    }

    @Test
    void aChatAnswerWithNullContentIsEmptyText() throws Exception {
        Wire.Answer a = Wire.parseCompletion("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null},"
                + "\"finish_reason\":\"tool_calls\"}]}", true);
        assertThat(a.text()).isEmpty();
        assertThat(a.finishReason()).isEqualTo("tool_calls");
        assertThat(a.promptTokens()).isZero();
    }

    @Test
    void statusesAreClassified() {
        var none = java.net.http.HttpHeaders.of(java.util.Map.of(), (a, b) -> true);
        assertThat(AttemptFailure.status(429, none, "").kind).isEqualTo(Kind.RATE_LIMITED);
        assertThat(AttemptFailure.status(500, none, "").kind).isEqualTo(Kind.SERVER_ERROR);
        assertThat(AttemptFailure.status(504, none, "").kind).isEqualTo(Kind.SERVER_ERROR);
        assertThat(AttemptFailure.status(408, none, "").kind).isEqualTo(Kind.TIMEOUT);
        for (int s : new int[] {301, 400, 401, 403, 404, 413, 422}) {
            assertThat(AttemptFailure.status(s, none, "").kind).as("HTTP %d", s).isEqualTo(Kind.REJECTED);
        }
        var later = java.net.http.HttpHeaders.of(java.util.Map.of("Retry-After", List.of("2")), (a, b) -> true);
        assertThat(AttemptFailure.status(503, later, "").retryAfter).isEqualTo(Duration.ofSeconds(2));
        assertThat(AttemptFailure.status(500, later, "").retryAfter).isNull();
        assertThat(AttemptFailure.status(408, none, "").toException("u", 1, 0, "").noAnswer()).isFalse();
    }

    @Test
    void aClientExceptionIsOneLine() {
        ClientException e = new ClientException(Kind.SERVER_ERROR, 500, 6, "http://h:1/v1/completions",
                "out of\nmemory", null);
        assertThat(e.getMessage()).isEqualTo("POST http://h:1/v1/completions: HTTP 500: out of memory (6 attempts)");
        assertThat(e.noAnswer()).isFalse();
    }

    @Test
    void requestsHaveAPromptOrMessages() {
        assertThatThrownBy(() -> new CompletionRequest("m", null, null, null, null, null, null, null, null))
                .hasMessageContaining("neither");
        assertThatThrownBy(() -> new CompletionRequest("m", "p", List.of(Message.user("u")), null, null, null, null,
                null, null)).hasMessageContaining("both");
        assertThatThrownBy(() -> CompletionRequest.chat("m", List.of())).hasMessageContaining("at least one");
        assertThatThrownBy(() -> CompletionRequest.prompt(" ", "p")).hasMessageContaining("model");
        assertThat(CompletionRequest.prompt("m", "p").isChat()).isFalse();
    }

    @Test
    void aStreamBodyAsksForUsage() throws Exception {
        JsonNode body = Wire.JSON.readTree(new String(Wire.requestBody(
                CompletionRequest.prompt("m", "p").with("stream_options", "mine"), true), StandardCharsets.UTF_8));
        assertThat(body.get("stream").asBoolean()).isTrue();
        assertThat(body.get("stream_options").get("include_usage").asBoolean()).isTrue();
    }

    @Test
    void configRejectsNonsense() {
        ClientConfig c = ClientConfig.of("http://h:1");
        assertThat(c.maxRetries()).isEqualTo(5);
        assertThat(c.initialBackoff()).isEqualTo(Duration.ofMillis(200));
        assertThat(c.maxBackoff()).isEqualTo(Duration.ofSeconds(10));
        assertThatThrownBy(() -> c.withMaxConcurrency(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> c.withMaxRetries(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> c.withRequestTimeout(Duration.ZERO)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> c.withBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(c.withApiKey("secret").toString()).doesNotContain("secret");
    }
}
