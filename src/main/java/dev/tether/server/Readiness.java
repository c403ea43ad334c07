package dev.tether.server;

import dev.tether.proc.PortListeners;
import java.net.URI;
import java.time.Duration;

/**
 * "Is it ready?" as one narrow question (Testcontainers' WaitStrategy): the caller polls it while
 * also checking that the server is still alive, which is a separate question.
 */
public interface Readiness {
    boolean isReady();

    String describe();

    /**
     * Ready when {@code GET url} answers 2xx (vLLM and llama.cpp answer 503 while loading).
     *
     * <p>One plain HTTP/1.1 request per check on a fresh connection, status line only: the JDK's
     * HttpClient costs tens of milliseconds to set up in a fresh JVM (its selector thread, TLS classes),
     * which the user would wait for between the server's first healthy answer and {@code Ready:}.
     * Local servers, plain HTTP: that is all a health check needs.
     */
    static Readiness http(String url) {
        return new HealthProbe(URI.create(url), Duration.ofSeconds(2), Duration.ofSeconds(5));
    }

    /** Ready when something listens on the port (for servers without a health endpoint). */
    static Readiness listening(int port) {
        return new Readiness() {
            @Override
            public boolean isReady() {
                return PortListeners.isListening(port);
            }

            @Override
            public String describe() {
                return "port " + port + " listens";
            }
        };
    }

    /**
     * Ready once a line of the server's log matches {@code pattern} (servers that say "ready" before, or instead
     * of, a health endpoint: "Uvicorn running on", "model loaded"). Each check reads only what was appended since
     * the last one; a log that shrank (rotated) is read again from its start.
     */
    static Readiness logLine(java.nio.file.Path log, java.util.regex.Pattern pattern) {
        return new Readiness() {
            private long offset;
            private final StringBuilder partial = new StringBuilder();
            private boolean seen;

            @Override
            public synchronized boolean isReady() {
                if (seen) {
                    return true;
                }
                try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(log.toFile(), "r")) {
                    long length = file.length();
                    if (length < offset) {
                        offset = 0;
                        partial.setLength(0);
                    }
                    file.seek(offset);
                    byte[] chunk = new byte[(int) Math.min(length - offset, 1 << 20)];
                    file.readFully(chunk);
                    offset += chunk.length;
                    partial.append(new String(chunk, java.nio.charset.StandardCharsets.UTF_8));
                } catch (java.io.IOException e) {
                    return false;   // not written yet
                }
                int end;
                while ((end = partial.indexOf("\n")) >= 0) {
                    if (pattern.matcher(partial.substring(0, end)).find()) {
                        seen = true;
                        return true;
                    }
                    partial.delete(0, end + 1);
                }
                return false;
            }

            @Override
            public String describe() {
                return "a log line matching /" + pattern.pattern() + "/";
            }
        };
    }
}
