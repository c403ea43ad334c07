package dev.tether.client;

/**
 * A request that did not produce a completion, after whatever retries it was allowed. Checked,
 * because every caller must decide what a failed request becomes (the pipeline writes a failure
 * record); {@link #kind()} says whether the server refused the request itself or could not answer.
 */
public final class ClientException extends Exception {
    /** Why an attempt failed; every kind but {@link #REJECTED} is worth another attempt. */
    public enum Kind {
        /** No connection, or it broke before a complete answer (refused, reset, closed mid-stream). */
        CONNECTION,
        /** No answer (or a stream went silent) within the request timeout; also HTTP 408. */
        TIMEOUT,
        /** HTTP 429. */
        RATE_LIMITED,
        /** HTTP 5xx. */
        SERVER_ERROR,
        /** A 2xx whose body is not the expected JSON (or SSE). */
        BAD_RESPONSE,
        /** Any other 4xx (and 3xx): the request itself is wrong; retrying cannot help. */
        REJECTED;

        public boolean retryable() {
            return this != REJECTED;
        }
    }

    private final Kind kind;
    private final int status;
    private final int attempts;
    private final String url;
    private final String reason;
    /** When the failed attempt began ({@link System#nanoTime()}); lets recovery skip stale failures. */
    final long attemptStartNanos;

    public ClientException(Kind kind, int status, int attempts, String url, String reason, Throwable cause) {
        this(kind, status, attempts, url, reason, cause, System.nanoTime());
    }

    ClientException(Kind kind, int status, int attempts, String url, String reason, Throwable cause,
                    long attemptStartNanos) {
        super(message(status, attempts, url, reason), cause);
        this.kind = kind;
        this.status = status;
        this.attempts = attempts;
        this.url = url;
        this.reason = reason;
        this.attemptStartNanos = attemptStartNanos;
    }

    private static String message(int status, int attempts, String url, String reason) {
        return "POST " + (url == null ? "(no server URL)" : url) + ": " + (status > 0 ? "HTTP " + status + ": " : "")
                + Wire.oneLine(reason, 400) + " (" + attempts + (attempts == 1 ? " attempt)" : " attempts)");
    }

    public Kind kind() {
        return kind;
    }

    /** The HTTP status that made the attempt fail; 0 when the failure was not an HTTP status. */
    public int status() {
        return status;
    }

    /** HTTP attempts made for the request, this failed one included. */
    public int attempts() {
        return attempts;
    }

    /** The endpoint of the last attempt; null if the base URL supplier had none. */
    public String url() {
        return url;
    }

    /** The reason alone, without URL, status and attempt count. */
    public String reason() {
        return reason;
    }

    /** No HTTP answer came at all: a connection error or a timeout. Only these call {@link ServerRecovery}. */
    public boolean noAnswer() {
        return status == 0 && (kind == Kind.CONNECTION || kind == Kind.TIMEOUT);
    }
}
