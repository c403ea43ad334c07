package dev.tether.cli;

import dev.tether.server.Lease;
import dev.tether.server.LeaseStore;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerManager;
import dev.tether.server.TetherHome;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code tether stop (--port P | ID | --all)}. A server owned by another live tether is stopped
 * through its shim (SIGTERM): the shim stops the tree and removes the lease, and the owning tether
 * sees its server end ("stopped from outside") and finishes its run.
 */
@Command(name = "stop", mixinStandardHelpOptions = true,
        description = {"Stop managed servers with their whole process trees.",
                "A server owned by another running tether is stopped too; that tether notices and ends."})
final class StopCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", paramLabel = "ID", description = "Server id (see tether ps).")
    String id;

    @Option(names = "--port", paramLabel = "P", description = "The managed server on this port.")
    String port;

    @Option(names = "--all", description = "Every managed server.")
    boolean all;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        TetherCommand.requireLinux();
        PrintWriter out = spec.commandLine().getOut();
        Integer p = port == null ? null : PortCommand.parsePort(port);
        ServerManager manager = new ServerManager(TetherHome.fromEnvironment(), ServerEvents.NONE);
        List<Lease> leases = Servers.select(manager, id, p, all);
        List<LeaseStore.Damaged> damaged = Servers.selectDamaged(manager, id, p, all);
        if (leases.isEmpty() && damaged.isEmpty()) {
            if (p != null) {
                // The same exit as an unknown id: the selector named no managed server.
                throw CliError.usage("no tether-managed server on port " + p + " (see `tether ps`, and `tether port " + p
                        + "` for who listens there)");
            }
            out.println("No managed servers.");
            return ExitCode.OK;
        }
        for (Lease lease : leases) {
            String summary = manager.stop(lease);
            out.println("Stopped " + lease.id() + " (" + ServerManager.describe(lease) + ", port " + lease.port() + "): " + summary);
        }
        for (LeaseStore.Damaged d : damaged) {
            String summary = manager.stopDamaged(d);
            out.println("Stopped " + d.id() + " (damaged lease file " + d.file() + ", port "
                    + (d.salvaged().port() > 0 ? d.salvaged().port() : "?") + "): " + summary);
        }
        return ExitCode.OK;
    }
}
