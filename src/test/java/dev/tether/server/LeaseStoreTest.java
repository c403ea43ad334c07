package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.tether.proc.ProcessIdentity;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Lease files: atomic writes, reads, listing, damaged files, updates under the lock. */
class LeaseStoreTest {
    @TempDir
    Path dir;

    private TetherHome home;
    private LeaseStore store;

    @BeforeEach
    void setUp() {
        home = new TetherHome(dir.resolve("state"));
        store = new LeaseStore(home);
    }

    /** An identity that is not alive: a pid that cannot exist on this boot. */
    private static ProcessIdentity dead(int pid) {
        return new ProcessIdentity(pid, 1, "no-such-boot", 1000);
    }

    private static Lease lease(String id, int port, Instant started) {
        ProcessIdentity me = ProcessIdentity.current();
        return new Lease(id, "model-" + id, "command", List.of("srv", "--port", String.valueOf(port)), "127.0.0.1", port,
                "/health", dead(4_000_001), 4_000_001, me, dead(4_000_002), Set.of(dead(4_000_001), dead(4_000_003)),
                "/tmp/" + id + ".log", started, 10_000, Lease.State.STARTING);
    }

    @Test
    void theStateDirectoryIsPrivate() throws Exception {
        for (Path p : List.of(home.root(), home.leases(), home.logs())) {
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(p))).as(p.toString()).isEqualTo("rwx------");
        }
        assertThat(store.directory()).isEqualTo(home.leases());
    }

    @Test
    void aLeaseReadsBackAsWritten() {
        Lease written = lease("a1", 8001, Instant.parse("2026-01-02T03:04:05.678Z"));
        store.write(written);
        assertThat(store.read("a1")).contains(written);
        assertThat(store.path("a1")).exists().hasFileName("a1.json");
        assertThat(store.read("missing")).isEmpty();
    }

    @Test
    void writesLeaveNoTemporaryFiles() throws Exception {
        for (int i = 0; i < 5; i++) {
            store.write(lease("a1", 8000 + i, Instant.now()));
        }
        try (var files = Files.list(home.leases())) {
            assertThat(files.map(p -> p.getFileName().toString()).filter(n -> !n.equals(".lock")))
                    .containsExactly("a1.json");
        }
        assertThat(store.read("a1").orElseThrow().port()).isEqualTo(8004);
    }

    @Test
    void listIsInStartOrderAndSkipsDamagedFiles() throws Exception {
        store.write(lease("late", 8002, Instant.parse("2026-01-01T00:00:02Z")));
        store.write(lease("early", 8001, Instant.parse("2026-01-01T00:00:01Z")));
        Files.writeString(home.leases().resolve("torn.json"), "{\"id\": \"torn\", \"port\": 80");
        Files.writeString(home.leases().resolve(".hidden.json"), "{}");
        Files.writeString(home.leases().resolve("notes.txt"), "not a lease");

        assertThat(store.list()).extracting(Lease::id).containsExactly("early", "late");
        assertThat(store.damaged()).extracting(LeaseStore.Damaged::file).containsExactly(home.leases().resolve("torn.json"));
        assertThat(store.damaged().getFirst().id()).isEqualTo("torn");
        assertThatThrownBy(() -> store.read("torn")).isInstanceOf(UncheckedIOException.class)
                .hasMessageContaining("torn.json").hasMessageContaining("damaged");
    }

    @Test
    void aLeaseCutAtAnyByteSalvagesOnlyExactFieldsAndNeverThrows() throws Exception {
        ProcessIdentity me = ProcessIdentity.current();
        ProcessIdentity other = new ProcessIdentity(4_000_123, 987_654_321L, me.bootId(), 1000);
        Lease full = new Lease("cut", "m", "command", List.of("srv", "--port", "18080"), "127.0.0.1", 18080, "/health",
                other, 4_000_123, me, other, Set.of(me, other), "/tmp/cut.log", Instant.now(), 10_000, Lease.State.READY);
        store.write(full);
        byte[] bytes = Files.readAllBytes(store.path("cut"));
        Set<ProcessIdentity> allowed = Set.of(me, other);
        boolean sawPortAndOwner = false;
        for (int cut = 0; cut < bytes.length - 1; cut++) {
            Files.write(store.path("cut"), java.util.Arrays.copyOf(bytes, cut));
            LeaseStore.Scan scan = store.scan();
            assertThat(scan.leases()).as("cut at %d", cut).isEmpty();
            Lease salvaged = scan.damaged().getFirst().salvaged();
            assertThat(salvaged.id()).isEqualTo("cut");
            assertThat(salvaged.port()).as("port, cut at %d", cut).isIn(0, 18080);
            assertThat(salvaged.pgid()).as("pgid, cut at %d", cut).isIn(0, 4_000_123);
            for (ProcessIdentity id : java.util.stream.Stream.of(salvaged.server(), salvaged.owner(), salvaged.shim())
                    .filter(java.util.Objects::nonNull).toList()) {
                assertThat(id).as("identity, cut at %d", cut).isIn(allowed);
            }
            assertThat(allowed).as("members, cut at %d", cut).containsAll(salvaged.members());
            sawPortAndOwner |= salvaged.port() == 18080 && me.equals(salvaged.owner());
        }
        assertThat(sawPortAndOwner).isTrue();
        Files.write(store.path("cut"), new byte[] {0, 1, 2, '{', '"'});
        assertThat(store.damaged()).singleElement().satisfies(d -> {
            assertThat(d.salvaged().membership().leaseId()).isEqualTo("cut");
            assertThat(d.salvaged().isOrphan()).isTrue();
        });
        Files.writeString(store.path("cut"), "{}");
        assertThat(store.damaged()).as("an object that is no lease").hasSize(1);
        assertThat(store.moveAside(store.damaged().getFirst())).contains(home.leases().resolve("cut.json.damaged"));
        assertThat(store.scan().damaged()).isEmpty();
    }

    @Test
    void updateChangesOneLeaseAndIgnoresAMissingOne() {
        store.write(lease("u1", 8001, Instant.now()));
        assertThat(store.update("u1", l -> l.withState(Lease.State.READY))).map(Lease::state).contains(Lease.State.READY);
        assertThat(store.read("u1")).map(Lease::state).contains(Lease.State.READY);
        assertThat(store.update("gone", l -> l.withState(Lease.State.READY))).isEmpty();
        assertThat(store.path("gone")).doesNotExist();
    }

    @Test
    void removeIsIdempotent() {
        store.write(lease("r1", 8001, Instant.now()));
        store.remove("r1");
        store.remove("r1");
        assertThat(store.read("r1")).isEmpty();
        assertThat(store.list()).isEmpty();
    }

    @Test
    void concurrentUpdatesAreNeverLost() throws Exception {
        store.write(lease("c1", 8001, Instant.now()).withMembers(Set.of()));
        int threads = 4;
        int each = 25;
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> workers = new ArrayList<>();
        // Each update reads, adds one member and writes: a lost update would lose a member.
        AtomicInteger next = new AtomicInteger(1);
        for (int t = 0; t < threads; t++) {
            workers.add(Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < each; i++) {
                    int n = next.getAndIncrement();
                    store.update("c1", l -> {
                        var members = new java.util.HashSet<>(l.members());
                        members.add(dead(5_000_000 + n));
                        return l.withMembers(members);
                    });
                }
            }));
        }
        go.countDown();
        for (Thread w : workers) {
            w.join();
        }
        assertThat(store.read("c1").orElseThrow().members()).hasSize(threads * each);
    }

    @Test
    void aReaderNeverSeesHalfALease() throws Exception {
        // Big leases written over and over while another thread reads: every read is one whole version.
        List<String> argv = new ArrayList<>();
        for (int i = 0; i < 2000; i++) {
            argv.add("--argument-number-" + i);
        }
        Lease big = new Lease("big", "m", "command", argv, "127.0.0.1", 8001, "/health", null, 0,
                ProcessIdentity.current(), null, Set.of(), "/tmp/big.log", Instant.now(), 1000, Lease.State.STARTING);
        store.write(big);
        AtomicBoolean done = new AtomicBoolean();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        AtomicInteger reads = new AtomicInteger();
        Thread reader = Thread.ofPlatform().start(() -> {
            while (!done.get()) {
                try {
                    Lease seen = store.read("big").orElseThrow();
                    if (seen.argv().size() != argv.size()) {
                        failures.add(new AssertionError("argv of " + seen.argv().size() + " words"));
                    }
                    reads.incrementAndGet();
                } catch (RuntimeException e) {
                    failures.add(e);
                }
            }
        });
        try {
            for (int i = 0; i < 200; i++) {
                store.write(big.withState(i % 2 == 0 ? Lease.State.READY : Lease.State.STARTING));
            }
        } finally {
            done.set(true);
            reader.join();
        }
        assertThat(failures).isEmpty();
        assertThat(reads.get()).isPositive();
    }

    @Test
    void aLeaseIsAnOrphanOnlyWhenOwnerAndShimAreBothGone() {
        ProcessIdentity me = ProcessIdentity.current();
        Lease base = lease("o1", 8001, Instant.now());
        Lease bothGone = new Lease("o1", "m", "command", List.of("srv"), "h", 1, null, null, 0, dead(4_000_010), dead(4_000_011),
                Set.of(), null, Instant.now(), 0, Lease.State.READY);
        assertThat(bothGone.isOrphan()).isTrue();
        assertThat(bothGone.withShim(me).isOrphan()).as("shim alive").isFalse();
        assertThat(base.isOrphan()).as("owner alive").isFalse();
        Lease noIdentities = new Lease("o2", "m", "command", List.of("srv"), "h", 1, null, null, 0, null, null,
                null, null, null, 0, Lease.State.STARTING);
        assertThat(noIdentities.isOrphan()).isTrue();
        assertThat(noIdentities.members()).isEmpty();
        assertThat(base.membership().leaseId()).isEqualTo("o1");
        assertThat(base.membership().pgid()).isEqualTo(4_000_001);
    }

    @Test
    void aLeaseFileWithoutBackendOrPlacementIsALoneLocalServer() throws Exception {
        Lease written = lease("old1", 8002, Instant.now());
        store.write(written);
        // A lease file as tether wrote it before pools and backends existed: neither field.
        Path file = store.path("old1");
        com.fasterxml.jackson.databind.node.ObjectNode json = (com.fasterxml.jackson.databind.node.ObjectNode)
                new com.fasterxml.jackson.databind.ObjectMapper().readTree(java.nio.file.Files.readString(file));
        json.remove("backend");
        json.remove("placement");
        java.nio.file.Files.writeString(file, json.toString());
        Lease read = store.read("old1").orElseThrow();
        assertThat(read.backend()).isEqualTo(ServerManager.BACKEND);
        assertThat(read.placement()).isNull();
        assertThat(read.replicated()).isFalse();
    }

    @Test
    void anOrphanOfAnotherBackendIsNotReapedHere() throws Exception {
        Lease cluster = new Lease("job1", "m", "command", List.of("srv"), "h", 1, null, null, 0, dead(4_000_020), dead(4_000_021),
                Set.of(), null, Instant.now(), 0, Lease.State.READY, new Placement("pabc", 1, 2, java.util.Map.of()), "slurm");
        store.write(cluster);
        assertThat(store.read("job1").orElseThrow()).isEqualTo(cluster);
        assertThat(cluster.isOrphan()).as("by this machine's processes").isTrue();
        try (ServerManager manager = new ServerManager(home, ServerEvents.NONE)) {
            assertThat(manager.reap()).as("the local backend judges only its own leases").isEmpty();
            assertThat(manager.leases()).contains(cluster);
        }
    }
}
