package dev.tether.server;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Copies a server's output into its log file, capped in size: when the file passes
 * {@code maxBytes} it becomes {@code <log>.1} (replacing an older one) and a new file starts, so a
 * chatty server never fills the disk and the newest lines are always in {@code <log>}.
 */
public final class RotatingLog {
    public static final long DEFAULT_MAX_BYTES = 64L << 20;

    private final Path file;
    private final long maxBytes;
    private OutputStream out;
    private long written;

    public RotatingLog(Path file, long maxBytes) throws IOException {
        this.file = file;
        this.maxBytes = maxBytes;
        open();
    }

    public static Path rotated(Path log) {
        return log.resolveSibling(log.getFileName() + ".1");
    }

    private void open() throws IOException {
        out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        written = Files.size(file);
    }

    /** Copies until end of stream, flushing after every read so the log is always current. */
    public void pump(InputStream in) throws IOException {
        byte[] buffer = new byte[16 * 1024];
        int n;
        while ((n = in.read(buffer)) >= 0) {
            write(buffer, n);
        }
    }

    synchronized void write(byte[] bytes, int length) throws IOException {
        if (written + length > maxBytes && written > 0) {
            out.close();
            Files.move(file, rotated(file), StandardCopyOption.REPLACE_EXISTING);
            open();
        }
        out.write(bytes, 0, length);
        out.flush();
        written += length;
    }

    public synchronized void line(String text) {
        try {
            byte[] bytes = (text + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
            write(bytes, bytes.length);
        } catch (IOException e) {
            // the log is best effort; the server keeps running
        }
    }

    public synchronized void close() throws IOException {
        out.close();
    }
}
