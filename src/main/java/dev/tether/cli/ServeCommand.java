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
}
