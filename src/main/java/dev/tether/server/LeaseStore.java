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
    private static final ObjectMapper JSON = JsonMapper.builder()
            .findAndAddModules()
            .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    public LeaseStore(TetherHome home) {
        this.dir = home.ensure().leases();
    }

    /** The file exists and does not parse as a lease (a missing file is not damaged). */
    static boolean isDamaged(Path file) {
        try {
            String name = file.getFileName().toString();
            parse(Files.readAllBytes(file), name.substring(0, name.length() - SUFFIX.length()));
            return false;
        } catch (java.nio.file.NoSuchFileException e) {
            return false;
        } catch (IOException e) {
            return true;
        }
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
        FileChannel channel;
        try {
            channel = FileChannel.open(dir.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        } catch (IOException e) {
            IN_PROCESS.unlock();
            throw new StateException("cannot open the lease lock " + dir.resolve(".lock"), dir.getParent(), e);
        }
        try (channel; FileLock ignored = channel.lock()) {
            return action.call();
        } finally {
            IN_PROCESS.unlock();
        }
    }

    public void write(Lease lease) {
        Path target = path(lease.id());
        Path temp = dir.resolve("." + lease.id() + ".tmp-" + ProcessHandle.current().pid());
        try {
            byte[] bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(lease);
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
            throw new StateException("cannot write the lease " + target, dir.getParent(), e);
        }
    }

    public Optional<Lease> read(String id) {
        Path file = path(id);
        try {
            return Optional.of(JSON.readValue(file.toFile(), Lease.class));
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
        return scan().leases();
    }

    /** Every lease file that cannot be read as a lease, with whatever could be salvaged from it. */
    public List<Damaged> damaged() {
        return scan().damaged();
    }

    /**
     * A lease file that does not parse (truncated, garbage): its id (the file name, which is also the
     * {@code TETHER_LEASE} marker its processes carry) and a lease holding whatever could be read from the
     * part that parses — identities only when complete, so a stop can still re-check each one before
     * signalling it.
     *
     * @param salvaged a lease with the recovered fields (null where nothing was recovered)
     * @param problem  why it does not parse (the parser's words)
     */
    public record Damaged(String id, Path file, String problem, Lease salvaged) {
        /** What can still be identified of the tree: the marker, the recorded identities, the group. */
        public dev.tether.proc.Membership membership() {
            return salvaged.membership();
        }
    }

    /** One pass over the directory: the readable leases (in start order) and the damaged files. */
    public record Scan(List<Lease> leases, List<Damaged> damaged) {}

    public Scan scan() {
        List<Lease> leases = new ArrayList<>();
        List<Damaged> bad = new ArrayList<>();
        for (Path file : files()) {
            String name = file.getFileName().toString();
            String id = name.substring(0, name.length() - SUFFIX.length());
            byte[] bytes;
            try {
                bytes = Files.readAllBytes(file);
            } catch (java.nio.file.NoSuchFileException e) {
                continue;   // removed since the listing
            } catch (IOException e) {
                bad.add(new Damaged(id, file, "cannot read it: " + e.getMessage(), LeaseSalvage.salvage(id, new byte[0])));
                continue;
            }
            try {
                leases.add(parse(bytes, id));
            } catch (IOException e) {
                bad.add(new Damaged(id, file, firstLine(e), LeaseSalvage.salvage(id, bytes)));
            }
        }
        leases.sort(java.util.Comparator.comparing(Lease::startedAt, java.util.Comparator.nullsLast(java.util.Comparator.naturalOrder())));
        return new Scan(leases, bad);
    }

    /**
     * Moves a damaged lease file aside to {@code <id>.json.damaged} (kept for a look, never read again).
     *
     * @return where it went, or empty if it was already gone or could not be moved
     */
    public Optional<Path> moveAside(Damaged damaged) {
        Path target = damaged.file().resolveSibling(damaged.file().getFileName() + ".damaged");
        try {
            Files.move(damaged.file(), target, StandardCopyOption.REPLACE_EXISTING);
            return Optional.of(target);
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** A lease that parses and is the one its file name says (an empty object is no lease). */
    private static Lease parse(byte[] bytes, String id) throws IOException {
        Lease lease = JSON.readValue(bytes, Lease.class);
        if (lease == null || !id.equals(lease.id())) {
            throw new IOException("it holds no lease with id " + id);
        }
        return lease;
    }

    private static String firstLine(Exception e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
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
