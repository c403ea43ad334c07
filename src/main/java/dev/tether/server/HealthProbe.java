package dev.tether.server;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * {@code GET <url>} answered 2xx? A bare socket, one request per check ({@code Connection: close}),
 * reading the status line only (see {@link Readiness#http}).
 */
final class HealthProbe implements Readiness {
    private static final int DRAIN_MILLIS = 50;
    private final URI url;
    private final String host;
    private final int port;
    private final byte[] request;
    private final int connectTimeoutMillis;
    private final int readTimeoutMillis;

    HealthProbe(URI url, Duration connectTimeout, Duration readTimeout) {
        this.url = url;
        this.host = url.getHost().startsWith("[") ? url.getHost().substring(1, url.getHost().length() - 1) : url.getHost();
        this.port = url.getPort() > 0 ? url.getPort() : 80;
        String path = url.getRawPath() == null || url.getRawPath().isEmpty() ? "/" : url.getRawPath();
        if (url.getRawQuery() != null) {
            path += "?" + url.getRawQuery();
        }
        this.request = ("GET " + path + " HTTP/1.1\r\nHost: " + url.getRawAuthority()
                + "\r\nUser-Agent: tether\r\nAccept: */*\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
        this.connectTimeoutMillis = (int) connectTimeout.toMillis();
        this.readTimeoutMillis = (int) readTimeout.toMillis();
    }

    @Override
    public boolean isReady() {
        int status = status();
        return status >= 200 && status < 300;
    }

    /** The answer's status code, or -1 when there is no HTTP answer. */
    int status() {
        try (Socket socket = new Socket()) {
            socket.setTcpNoDelay(true);
            socket.connect(new InetSocketAddress(host, port), connectTimeoutMillis);
            socket.setSoTimeout(readTimeoutMillis);
            OutputStream out = socket.getOutputStream();
            out.write(request);
            out.flush();
            InputStream in = socket.getInputStream();
            int status = parseStatus(in);
            socket.setSoTimeout(DRAIN_MILLIS);
            drain(in);
            return status;
        } catch (IOException | IllegalArgumentException e) {
            return -1;
        }
    }

    /**
     * Reads the rest of the answer (Connection: close, so up to the server's close; at most 64 KiB and
     * {@value #DRAIN_MILLIS} ms per read, for a server that keeps the connection open anyway): closing with
     * unread data would reset the connection, and some servers log each reset as an error.
     */
    private static void drain(InputStream in) {
        byte[] sink = new byte[4096];
        try {
            for (int total = 0; total < 65536; ) {
                int n = in.read(sink);
                if (n < 0) {
                    return;
                }
                total += n;
            }
        } catch (IOException e) {
            // the status is what counts
        }
    }

    /** "HTTP/1.x NNN ...": the three digits after the first space of the first line. */
    static int parseStatus(InputStream in) throws IOException {
        byte[] line = new byte[64];
        int n = 0;
        while (n < line.length) {
            int b = in.read();
            if (b < 0 || b == '\n') {
                break;
            }
            line[n++] = (byte) b;
        }
        String text = new String(line, 0, n, StandardCharsets.US_ASCII);
        if (!text.startsWith("HTTP/")) {
            return -1;
        }
        int space = text.indexOf(' ');
        if (space < 0 || text.length() < space + 4) {
            return -1;
        }
        try {
            return Integer.parseInt(text.substring(space + 1, space + 4));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    @Override
    public String describe() {
        return "GET " + url + " answers 2xx";
    }
}
