package dev.tether.cli;

import dev.tether.proc.Poll;
import dev.tether.server.Lease;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerManager;
import dev.tether.server.TetherHome;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code tether logs (--port P | ID) [-f]}: a server's log; an ID also finds a stopped server's log. */
@Command(name = "logs", mixinStandardHelpOptions = true,
        description = "Print a server's log; -f follows it until the server stops (or Ctrl-C).")
final class LogsCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", paramLabel = "ID", description = "Server id (see tether ps); works after it stopped too.")
    String id;

    @Option(names = "--port", paramLabel = "P", description = "The managed server on this port.")
    String port;

    @Option(names = {"-f", "--follow"}, description = "Keep printing new lines until the server stops.")
    boolean follow;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        TetherHome home = TetherHome.fromEnvironment();
        ServerManager manager = new ServerManager(home, ServerEvents.NONE);
        Path log;
        String leaseId;
        if (id != null && port == null) {
            leaseId = id;
            log = manager.lease(id).map(l -> Path.of(l.logPath())).orElse(home.logs().resolve(id + ".log"));
            if (!Files.exists(log)) {
                throw CliError.usage("no log for server " + id + " (see `tether ps`, or the files in " + home.logs() + ")");
            }
        } else {
            if (id == null && port == null) {
                throw CliError.usage("say which server's log: an ID (see `tether ps`) or --port P");
            }
            Integer p = port == null ? null : PortCommand.parsePort(port);
            List<Lease> leases = Servers.select(manager, id, p, false);
            if (leases.isEmpty()) {
                throw CliError.usage("no tether-managed server on port " + p);
            }
            leaseId = leases.getFirst().id();
            log = Path.of(leases.getFirst().logPath());
        }
        long offset = copy(log, 0, out);
        if (!follow) {
            return ExitCode.OK;
        }
        // Follow: poll the file for growth while the lease exists; a rotated log starts over.
        while (manager.lease(leaseId).isPresent()) {
            long before = offset;
            Poll.until(() -> size(log) != before || manager.lease(leaseId).isEmpty(), Duration.ofSeconds(1), Duration.ofMillis(100));
            offset = size(log) < offset ? copy(log, 0, out) : copy(log, offset, out);
        }
        copy(log, offset, out);
        return ExitCode.OK;
    }

    private static long size(Path log) {
        try {
            return Files.size(log);
        } catch (IOException e) {
            return 0;
        }
    }

    private static long copy(Path log, long from, PrintWriter out) throws IOException {
        if (!Files.exists(log)) {
            return from;
        }
        try (RandomAccessFile file = new RandomAccessFile(log.toFile(), "r")) {
            file.seek(from);
            byte[] buffer = new byte[64 * 1024];
            int n;
            long at = from;
            while ((n = file.read(buffer)) > 0) {
                out.print(new String(buffer, 0, n, StandardCharsets.UTF_8));
                at += n;
            }
            out.flush();
            return at;
        }
    }
}
