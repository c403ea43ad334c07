package dev.tether.cli;

import dev.tether.server.ForeignPortException;
import dev.tether.server.Lease;
import dev.tether.server.LeaseStore;
import dev.tether.server.PortInspector;
import dev.tether.server.PortInUseException;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.ServerStartException;
import java.util.List;

/** Starting a server and finding leases, with failures turned into one-line errors and exit codes. */
final class Servers {
    private Servers() {}

    static ServerHandle start(ServerManager manager, ServerSpec spec) {
        try {
            return manager.start(spec);
        } catch (ServerStartException e) {
            String tail = e.logTail().isBlank() ? "" : "\n--- last lines of the server log ---\n" + e.logTail() + "\n---";
            throw new CliError(ExitCode.SERVER_FAILED, "the server failed to start: " + e.getMessage() + tail);
        } catch (ForeignPortException | PortInUseException e) {
            throw new CliError(ExitCode.PORT_HELD, e.getMessage());
        }
    }

    /** The leases a selector names: an id, a port, or all. */
    static List<Lease> select(ServerManager manager, String id, Integer port, boolean all) {
        int given = (id != null ? 1 : 0) + (port != null ? 1 : 0) + (all ? 1 : 0);
        if (given != 1) {
            throw CliError.usage("say which server: an ID, --port P, or --all (see `tether ps`)");
        }
        List<Lease> leases = manager.leases();
        if (all) {
            return leases;
        }
        if (port != null) {
            return leases.stream().filter(l -> l.port() == port).toList();
        }
        List<Lease> byId = leases.stream().filter(l -> l.id().equals(id)).toList();
        if (byId.isEmpty() && manager.damagedLeases().stream().noneMatch(d -> d.id().equals(id))) {
            throw CliError.usage("no managed server with id " + id + " (see `tether ps`)");
        }
        return byId;
    }

    /**
     * The damaged leases a selector names (call after {@link #select}, which checks the selector): by id,
     * by port — the port salvaged from the file, or a listener on the port carrying the lease's marker —
     * or all.
     */
    static List<LeaseStore.Damaged> selectDamaged(ServerManager manager, String id, Integer port, boolean all) {
        List<LeaseStore.Damaged> damaged = manager.damagedLeases();
        if (all || damaged.isEmpty()) {
            return damaged;
        }
        if (id != null) {
            return damaged.stream().filter(d -> d.id().equals(id)).toList();
        }
        java.util.Set<String> markers = new java.util.HashSet<>();
        new PortInspector(manager.home()).holders(port).forEach(h -> h.leaseId().ifPresent(markers::add));
        return damaged.stream().filter(d -> d.salvaged().port() == port || markers.contains(d.id())).toList();
    }
}
