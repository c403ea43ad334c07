package dev.tether.cli;

import dev.tether.server.ForeignPortException;
import dev.tether.server.PortInUseException;
import dev.tether.server.ServerHandle;
import dev.tether.server.ServerManager;
import dev.tether.server.ServerSpec;
import dev.tether.server.ServerStartException;
import dev.tether.server.TetherHome;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code tether serve}: start a server in the foreground; Ctrl-C stops its whole tree. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Start a model server and keep it up in the foreground.",
                "Prints `Ready: URL` once its health check answers; Ctrl-C (or SIGTERM, or `tether stop`) stops its whole tree."})
final class ServeCommand implements Callable<Integer> {

    @Mixin
    ServerOptions server;

    @Mixin
    ReplicaOptions pool;

    @CommandLine.Parameters(paramLabel = "SERVER-ARGS", arity = "0..*",
            description = "After --: more arguments for the server's argv (e.g. -- --max-model-len 4096).")
    java.util.List<String> serverArgs;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        TetherCommand.requireLinux();
        PrintWriter out = spec.commandLine().getOut();
        server.takeTrailingArgs(serverArgs, spec);
        TetherHome home = TetherHome.fromEnvironment();
        ServerSpec serverSpec = server.toSpec(home);
        pool.check(spec, spec.commandLine().getParseResult().hasMatchedOption("--port"), server.port);
        if (pool.pooled()) {
            return servePool(home, serverSpec, out);
        }
        Interrupts.install(spec.commandLine().getErr());
        try (ServerManager manager = new ServerManager(home, new ConsoleEvents(out))) {
            ServerHandle handle = Servers.start(manager, serverSpec);
            if (!handle.owned()) {
                out.println("Nothing to serve: that server is already running under another tether, which keeps it up.");
                return ExitCode.OK;
            }
            out.println("Serving until Ctrl-C (or `tether stop " + handle.lease().id() + "` from another shell).");
            out.flush();
            Integer code;
            try {
                code = handle.onExit().get();
            } catch (ExecutionException e) {
                code = null;
            }
            if (Interrupts.exiting()) {
                return ExitCode.INTERRUPTED;   // the shutdown hook is stopping it; the signal's code wins
            }
            var external = handle.externalStopSummary();
            if (external.isPresent()) {
                // No summary here: closing the manager prints "Server … stopped: <summary>" next.
                out.println("Server " + handle.lease().id() + " was stopped from outside by "
                        + handle.stoppedBy().orElse("SIGTERM to its shim") + ".");
                return ExitCode.OK;
            }
            out.println("Server " + handle.lease().id() + " exited " + (code == null ? "(its shim is gone)" : "with code " + code)
                    + "; last lines of its log:\n" + ServerManager.logTail(handle.lease()));
            return ExitCode.JOB_FAILED;
        }
    }

    /**
     * {@code serve --replicas N}: the replicas start in parallel, each prints its own {@code Ready:} line; one that
     * fails to start is left out with one line (exit 3 only when none started). They serve until Ctrl-C; when one
     * of them ends by itself, the others are stopped too and the exit says which (exit 1), as for a lone server.
     */
    private Integer servePool(TetherHome home, ServerSpec base, PrintWriter out) throws InterruptedException {
        String group = ReplicaOptions.newGroup();
        java.util.List<ServerSpec> specs = pool.place(base, group);   // too few GPUs: exit 2 before anything starts
        Interrupts.install(spec.commandLine().getErr());
        try (ServerManager manager = new ServerManager(home, new ConsoleEvents(out));
             dev.tether.pipeline.ServerSession session = new dev.tether.pipeline.ServerSession(manager, specs.size(),
                     m -> specs, 0)) {
            try {
                session.serve(base.model() == null ? "" : base.model());
            } catch (ServerStartException e) {
                String tail = e.logTail().isBlank() ? "" : "\n--- last lines of the server log ---\n" + e.logTail() + "\n---";
                throw new CliError(ExitCode.SERVER_FAILED, "no replica started: " + e.getMessage() + tail);
            } catch (dev.tether.server.ForeignPortException | dev.tether.server.PortInUseException e) {
                throw new CliError(ExitCode.PORT_HELD, e.getMessage());
            }
            java.util.List<dev.tether.server.RunningServer> up = session.servers();
            out.println("Serving " + up.size() + (up.size() == 1 ? " replica" : " replicas") + " (pool " + group
                    + ") until Ctrl-C (or `tether stop --all` from another shell): "
                    + String.join(" ", up.stream().map(dev.tether.server.RunningServer::baseUrl).toList()));
            out.flush();
            java.util.concurrent.CompletableFuture<?>[] exits = up.stream().map(dev.tether.server.RunningServer::onExit)
                    .toArray(java.util.concurrent.CompletableFuture[]::new);
            try {
                java.util.concurrent.CompletableFuture.anyOf(exits).get();
            } catch (ExecutionException e) {
                // a shim lost: said below like an exit
            }
            if (Interrupts.exiting()) {
                return ExitCode.INTERRUPTED;
            }
            dev.tether.server.RunningServer ended = up.stream().filter(h -> h.onExit().isDone()).findFirst().orElse(up.getFirst());
            var external = ended.externalStopSummary();
            if (external.isPresent()) {
                out.println("Server " + ended.lease().id() + " was stopped from outside by "
                        + ended.stoppedBy().orElse("SIGTERM to its shim") + "; stopping the other replicas.");
                return ExitCode.OK;
            }
            Integer code = ended.exitCode().orElse(null);
            out.println("Server " + ended.lease().id() + " (" + ended.spec().placement().label() + ") exited "
                    + (code == null ? "(its shim is gone)" : "with code " + code) + "; stopping the other replicas; "
                    + "last lines of its log:\n" + ServerManager.logTail(ended.lease()));
            return ExitCode.JOB_FAILED;
        }
    }
}
