package dev.tether.server;

import java.util.List;

/**
 * Where servers run (DESIGN 2 and 7): launch a spec under a lease, find, stop and reap what the leases record.
 * The local backend is {@link ServerManager} (each server under its own shim on this machine); a cluster backend
 * (servers as Slurm jobs) fits beside it. The pipeline and the commands above it hold a backend and the
 * {@link RunningServer}s it returns, never a process.
 */
public interface ServerBackend extends AutoCloseable {
    /** The name recorded in each lease's {@code backend} field. */
    String name();

    /**
     * A ready server for the spec: started, or (where the backend can tell) a healthy identical one that another live
     * tether manages, shared.
     */
    RunningServer start(ServerSpec spec) throws ServerStartException, ForeignPortException, PortInUseException;

    /** It is stopping its servers (close, Ctrl-C, SIGTERM): a server that ends now is not to be restarted. */
    boolean closing();

    /** The servers its leases record (every owner's). */
    List<Lease> leases();

    /** Stops the server a lease records; a one-line summary. */
    String stop(Lease lease);

    /** Stops every server whose owning tether is gone; the leases reaped. */
    List<Lease> reap();

    /** Stops every server this process started through it. */
    @Override
    void close();
}
