package dev.tether.server;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.UnaryOperator;

/**
 * Lease files under {@code $TETHER_HOME/leases}. Each write goes to a temporary file that is then
 * renamed over the lease, so a reader never sees half a lease. No fsync: a lease describes live processes,
 * and after a crash of the machine none of them lives (the boot id says so), so durability buys nothing,
 * while an fsync on a busy disk cost up to tens of ms between a server's first healthy answer and
 * {@code Ready:}. A lease that a power loss left torn is reported as damaged like any other. Decisions that read and then
 * write (claiming a port, updating a lease) run under {@link #locked}: an exclusive lock on
 * {@code leases/.lock} between processes, plus a lock inside this JVM (file locks are per process).
 */
public final class LeaseStore {
    private static final ReentrantLock IN_PROCESS = new ReentrantLock();
    private static final String SUFFIX = ".json";

    private final Path dir;
    private final ObjectMapper json = JsonMapper.builder()
            .findAndAddModules()
            .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    public LeaseStore(TetherHome home) {
        this.dir = home.ensure().leases();
    }

    public Path directory() {
        return dir;
    }

    public Path path(String id) {
        return dir.resolve(id + SUFFIX);
    }

    /** Runs {@code action} holding the store's lock (between processes and threads). */
    public <T> T locked(Callable<T> action) throws Exception {
        IN_PROCESS.lock();
        try (FileChannel channel = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE);
             FileLock ignored = channel.lock()) {
            return action.call();
        } finally {
            IN_PROCESS.unlock();
        }
    }

    public void write(Lease lease) {
        Path target = path(lease.id());
        Path temp = dir.resolve("." + lease.id() + ".tmp-" + ProcessHandle.current().pid());
        try {
            byte[] bytes = json.writerWithDefaultPrettyPrinter().writeValueAsBytes(lease);
            try (FileChannel out = FileChannel.open(temp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer buffer = ByteBuffer.wrap(bytes);
                while (buffer.hasRemaining()) {
                    out.write(buffer);
                }
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException ignored) {
                // best effort
            }
            throw new UncheckedIOException("cannot write lease " + target, e);
        }
    }

    public Optional<Lease> read(String id) {
        Path file = path(id);
        try {
            return Optional.of(json.readValue(file.toFile(), Lease.class));
        } catch (java.io.FileNotFoundException | java.nio.file.NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            if (!Files.exists(file)) {
                return Optional.empty();
            }
            throw new UncheckedIOException("lease " + file + " is not readable (" + e.getMessage()
                    + "); move it away if it is damaged", e);
        }
    }

    /** Every readable lease; damaged files are skipped (and listed by {@link #damaged()}). */
    public List<Lease> list() {
        List<Lease> leases = new ArrayList<>();
        for (Path file : files()) {
            String name = file.getFileName().toString();
            try {
                read(name.substring(0, name.length() - SUFFIX.length())).ifPresent(leases::add);
            } catch (UncheckedIOException e) {
                // reported by damaged()
            }
        }
        leases.sort(java.util.Comparator.comparing(Lease::startedAt, java.util.Comparator.nullsLast(java.util.Comparator.naturalOrder())));
        return leases;
    }

    public List<Path> damaged() {
        List<Path> bad = new ArrayList<>();
        for (Path file : files()) {
            try {
                json.readValue(file.toFile(), Lease.class);
            } catch (IOException e) {
                if (Files.exists(file)) {
                    bad.add(file);
                }
            }
        }
        return bad;
    }

    /** Reads, changes and writes one lease under the lock; empty if it no longer exists. */
    public Optional<Lease> update(String id, UnaryOperator<Lease> change) {
        try {
            return locked(() -> read(id).map(change).map(l -> {
                write(l);
                return l;
            }));
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    public void remove(String id) {
        try {
            Files.deleteIfExists(path(id));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove lease " + path(id), e);
        }
    }

    private List<Path> files() {
        List<Path> files = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, "*" + SUFFIX)) {
            for (Path p : stream) {
                if (!p.getFileName().toString().startsWith(".")) {
                    files.add(p);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list leases in " + dir, e);
        }
        return files;
    }
}
