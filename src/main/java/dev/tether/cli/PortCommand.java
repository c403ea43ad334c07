package dev.tether.cli;

import dev.tether.proc.PortListeners;
import dev.tether.proc.StopReport;
import dev.tether.server.ForeignPortException;
import dev.tether.server.PortInspector;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerManager;
import dev.tether.server.TetherHome;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code tether port P [--kill [--force]]}: who listens on P, and whether tether manages it. */
@Command(name = "port", mixinStandardHelpOptions = true,
        description = {
                "Show who listens on a TCP port (pid, user, command) and whether tether manages it.",
                "With --kill, stop it: a tether-managed server with its whole tree; a process tether",
                "did not start only with --force, and only if it belongs to you."})
final class PortCommand implements java.util.concurrent.Callable<Integer> {

    @Parameters(index = "0", paramLabel = "P", description = "TCP port, 1-65535.")
    String portText;

    @Option(names = "--kill", description = "Stop what listens on the port (see above).")
    boolean kill;

    @Option(names = "--force", description = "With --kill: also stop a process tether does not manage (your own user's only).")
    boolean force;

    @Option(names = "--grace", defaultValue = "10s", paramLabel = "DURATION",
            description = "How long to wait after SIGTERM before SIGKILL (default: ${DEFAULT-VALUE}).",
            converter = DurationConverter.class)
    Duration grace;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        int port = parsePort(portText);
        if (force && !kill) {
            throw CliError.usage("--force only goes with --kill");
        }
        TetherCommand.requireLinux();
        PrintWriter out = spec.commandLine().getOut();
        PortInspector inspector = new PortInspector(TetherHome.fromEnvironment());
        List<PortInspector.Holder> holders = inspector.holders(port);
        if (holders.isEmpty()) {
            out.println(PortListeners.isListening(port)
                    ? "Port " + port + ": a socket listens on it, but its process is not visible to you (another user's or another namespace's)"
                    : "Port " + port + ": nothing listens on it");
            return ExitCode.OK;
        }
        for (PortInspector.Holder h : holders) {
            out.println(describe(port, h));
        }
        if (!kill) {
            return ExitCode.OK;
        }
        // A managed server is stopped the way `tether stop` does it: through its shim, so its owner notices.
        ServerManager manager = new ServerManager(TetherHome.fromEnvironment(), ServerEvents.NONE);
        for (String leaseId : holders.stream().filter(h -> h.ownership() == PortInspector.Ownership.MANAGED)
                .map(h -> h.leaseId().orElseThrow()).distinct().toList()) {
            manager.leases().stream().filter(l -> l.id().equals(leaseId)).findFirst()
                    .ifPresent(lease -> out.println("Stopped " + leaseId + ": " + manager.stop(lease)));
        }
        // A damaged lease: what it still identifies (its marker, recorded identities) is stopped, the file moved aside.
        List<String> damagedIds = holders.stream().filter(h -> h.ownership() == PortInspector.Ownership.DAMAGED)
                .map(h -> h.leaseId().orElseThrow()).distinct().toList();
        for (var d : manager.damagedLeases()) {
            if (damagedIds.contains(d.id())) {
                out.println("Stopped " + d.id() + " (damaged lease file " + d.file() + "): " + manager.stopDamaged(d));
            }
        }
        if (!PortListeners.isListening(port)) {
            return ExitCode.OK;
        }
        StopReport report;
        try {
            report = inspector.kill(port, force, grace);
        } catch (ForeignPortException e) {
            throw new CliError(ExitCode.PORT_HELD, e.getMessage());
        }
        out.println("Stopped: " + report.summary());
        if (!report.complete()) {
            throw new CliError(ExitCode.JOB_FAILED, "port " + port + " could not be freed: " + report.summary());
        }
        return ExitCode.OK;
    }

    static String describe(int port, PortInspector.Holder h) {
        String whose = switch (h.ownership()) {
            case MANAGED -> "managed by tether (lease " + h.leaseId().orElseThrow() + ")";
            case DAMAGED -> "managed by tether, but its lease file (" + h.leaseId().orElseThrow() + ".json) is damaged; `tether port "
                    + port + " --kill` stops it and moves the file aside";
            case ORPHAN -> "left by a tether that is gone (lease " + h.leaseId().orElseThrow()
                    + " no longer exists): an orphan; `tether port " + port + " --kill` stops it";
            case FOREIGN -> h.leaseId().map(l -> "managed by the tether of another TETHER_HOME (lease " + l
                    + "): not managed here").orElse("not managed by tether");
        };
        return "Port " + port + " (" + h.address() + "): pid " + h.identity().pid() + ", user " + h.user()
                + ", " + whose + "\n  " + h.command();
    }

    /** One clear line for anything that is not a port number. */
    static int parsePort(String text) {
        long port;
        try {
            port = Long.parseLong(text.trim());
        } catch (NumberFormatException e) {
            throw CliError.usage("port must be a number from 1 to 65535, not '" + text + "'");
        }
        if (!PortListeners.isValidPort(port)) {
            throw CliError.usage("port must be from 1 to 65535, not " + port);
        }
        return (int) port;
    }
}
