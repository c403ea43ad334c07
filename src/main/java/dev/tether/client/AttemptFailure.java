package dev.tether.client;

import dev.tether.client.ClientException.Kind;
import java.io.IOException;
import java.net.ConnectException;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpHeaders;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * Why one attempt failed, before the retry loop decides what that means for the request. No stack
 * trace: it is an answer to classify, not a bug to locate (the underlying exception is the cause).
 */
final class AttemptFailure extends Exception {
    final Kind kind;
    final int status;
    final String reason;
    /** The server's Retry-After (429/503), or null. */
    final Duration retryAfter;

    AttemptFailure(Kind kind, int status, String reason, Duration retryAfter, Throwable cause) {
        super(reason, cause, false, false);
        this.kind = kind;
        this.status = status;
        this.reason = reason;
        this.retryAfter = retryAfter;
    }

    static AttemptFailure of(Kind kind, String reason) {
        return new AttemptFailure(kind, 0, reason, null, null);
    }

    static AttemptFailure badResponse(String reason) {
        return of(Kind.BAD_RESPONSE, reason);
    }

    /** A non-2xx answer: 429 and 5xx are worth retrying (Retry-After honoured on 429/503), other codes not. */
    static AttemptFailure status(int status, HttpHeaders headers, String body) {
        String message = Wire.errorMessage(body);
        Duration retryAfter = status == 429 || status == 503
                ? headers.firstValue("Retry-After").map(v -> Backoff.parseRetryAfter(v, Instant.now())).orElse(null)
                : null;
        Kind kind;
        if (status == 429) {
            kind = Kind.RATE_LIMITED;
        } else if (status >= 500 && status <= 599) {
            kind = Kind.SERVER_ERROR;
        } else if (status == 408) {
            kind = Kind.TIMEOUT;
        } else {
            kind = Kind.REJECTED;
        }
        return new AttemptFailure(kind, status, message, retryAfter, null);
    }

    /** An exception from the HTTP client (the future's cause, or thrown by send). */
    static AttemptFailure transport(Throwable t, Duration connectTimeout) {
        while ((t instanceof ExecutionException || t instanceof CompletionException) && t.getCause() != null) {
            t = t.getCause();
        }
        if (t instanceof HttpConnectTimeoutException) {
            return new AttemptFailure(Kind.CONNECTION, 0, "could not connect within " + connectTimeout.toMillis()
                    + " ms", null, t);
        }
        if (t instanceof HttpTimeoutException) {
            return new AttemptFailure(Kind.TIMEOUT, 0, "no answer in time: " + t.getMessage(), null, t);
        }
        if (t instanceof ConnectException) {
            String m = t.getMessage();
            return new AttemptFailure(Kind.CONNECTION, 0, m == null || m.isBlank() ? "connection refused"
                    : "cannot connect: " + m, null, t);
        }
        if (t instanceof IOException) {
            return new AttemptFailure(Kind.CONNECTION, 0, "connection failed: " + describe(t), null, t);
        }
        // Not a network problem (an invalid header, a bug): another attempt would fail the same way.
        return new AttemptFailure(Kind.REJECTED, 0, "cannot send the request: " + describe(t), null, t);
    }

    static String describe(Throwable t) {
        String m = t.getMessage();
        return t.getClass().getSimpleName() + (m == null || m.isBlank() ? "" : ": " + m);
    }

    ClientException toException(String url, int attempts, long attemptStartNanos, String note) {
        return new ClientException(kind, status, attempts, url, note.isEmpty() ? reason : reason + "; " + note,
                getCause(), attemptStartNanos);
    }
}
