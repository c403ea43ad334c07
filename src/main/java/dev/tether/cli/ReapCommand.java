package dev.tether.cli;

import dev.tether.server.ServerManager;
import dev.tether.server.TetherHome;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code tether reap}: stop every server whose owning tether and shim are both gone. */
@Command(name = "reap", mixinStandardHelpOptions = true,
        description = "Stop every server whose owning tether is gone (its shim too), and remove its lease.")
final class ReapCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        TetherCommand.requireLinux();
        PrintWriter out = spec.commandLine().getOut();
        ServerManager manager = new ServerManager(TetherHome.fromEnvironment(), new ConsoleEvents(out));
        if (manager.reap().isEmpty()) {
            out.println("No orphans.");
        }
        return ExitCode.OK;
    }
}
