package dev.tether.server;

import dev.tether.proc.ProcessIdentity;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The local backend's port claims: under the lease store's lock, what is on a spec's port — free (our lease is
 * written for it before anything is spawned), an identical live server to share, another server's, an orphan to
 * reap, or a foreign listener — and, for {@code --port auto}, a free port that no lease holds.
 */
final class PortClaims {
    private final TetherHome home;
    private final LeaseStore store;
    private final Reaper reaper;
    private final ProcessIdentity self;

    PortClaims(TetherHome home, LeaseStore store, Reaper reaper, ProcessIdentity self) {
        this.home = home;
        this.store = store;
        this.reaper = reaper;
        this.self = self;
    }

    /** What is on the spec's port: our fresh lease for it, or the live lease of the server already there. */
    record Claim(Lease lease, boolean fresh) {}

    /** Under the store's lock: decide what is on the port and, if it is free, write our lease for it. */
    Claim claim(ServerSpec spec) throws ForeignPortException, PortInUseException {
        try {
            return store.locked(() -> {
                // Every orphan is reaped here, whatever its port: DESIGN 5 asks it of the port's next user, but
                // with --port auto no start would ever look at an orphan's port, and dead runs would pile up.
                List<Lease> live = new ArrayList<>();
                LeaseStore.Scan scan = store.scan();
                for (Lease lease : scan.leases()) {
                    if (!ServerManager.BACKEND.equals(lease.backend())) {
                        continue;   // another backend's server (a cluster job): not this machine's processes to judge
                    }
                    if (lease.isOrphan()) {
                        reaper.reapLease(lease);
                    } else {
                        live.add(lease);
                    }
                }
                reaper.reapDamaged(scan.damaged());
                int port = spec.port();
                if (port == ServerSpec.AUTO_PORT) {
                    port = pickFreePort(spec.host());
                } else {
                    for (Lease lease : live) {
                        if (lease.port() != port) {
                            continue;
                        }
                        if (!sameServer(lease, spec, port)) {
                            throw new PortInUseException("port " + port + ": another server (" + LeaseText.describe(lease)
                                    + ") is already running there, managed by tether pid " + lease.owner().pid()
                                    + "; use --port auto, or `tether stop --port " + port + "`");
                        }
                        return new Claim(lease, false);
                    }
                    reaper.reapUnleasedListeners(port);
                }
                Lease lease = newLease(spec, port);
                store.write(lease);
                return new Claim(lease, true);
            });
        } catch (ForeignPortException | PortInUseException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Reusable only if it is the very command we would run: same model, profile and argv. */
    private static boolean sameServer(Lease lease, ServerSpec spec, int port) {
        return java.util.Objects.equals(lease.model(), spec.model())
                && java.util.Objects.equals(lease.profile(), spec.profile().name())
                && lease.argv().equals(spec.argv(port));
    }

    private int pickFreePort(String host) throws IOException {
        Set<Integer> leased = new java.util.HashSet<>();
        store.list().forEach(l -> leased.add(l.port()));
        for (int attempt = 0; attempt < 100; attempt++) {
            try (ServerSocket probe = new ServerSocket()) {
                probe.setReuseAddress(true);
                probe.bind(new InetSocketAddress(InetAddress.getByName(ServerSpec.connectableHost(host)
                        .replace("[", "").replace("]", "")), 0));
                int port = probe.getLocalPort();
                if (!leased.contains(port)) {
                    return port;
                }
            }
        }
        throw new IOException("no free port found");
    }

    private Lease newLease(ServerSpec spec, int port) {
        String id = leaseId();
        Path log = home.logs().resolve(id + ".log");
        return new Lease(id, spec.model(), spec.profile().name(), spec.argv(port), spec.host(), port,
                spec.profile().healthPath(), null, 0, self, null, Set.of(), log.toString(), Instant.now(),
                spec.grace().toMillis(), Lease.State.STARTING, spec.placement().equals(Placement.SINGLE) ? null : spec.placement(), ServerManager.BACKEND);
    }

    private static String leaseId() {
        byte[] random = new byte[4];
        ThreadLocalRandom.current().nextBytes(random);
        return "t" + Long.toString(System.currentTimeMillis() / 1000 % 1_000_000, 36) + HexFormat.of().formatHex(random);
    }
}
