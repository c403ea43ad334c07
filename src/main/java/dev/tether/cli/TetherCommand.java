package dev.tether.cli;

import dev.tether.proc.ProcFs;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The root command: {@code tether <subcommand>}. Parses, dispatches, maps failures to exit codes. */
@Command(name = "tether",
        mixinStandardHelpOptions = true,
        versionProvider = TetherCommand.Version.class,
        description = {
                "Runs batch LLM jobs against model servers that it starts, watches and stops itself.",
                "A server's whole process tree goes when the run ends; nothing tether did not start is touched."},
        subcommands = {RunCommand.class, ServeCommand.class, PsCommand.class, StopCommand.class, LogsCommand.class, PortCommand.class,
                ReapCommand.class, ExecCommand.class, CommandLine.HelpCommand.class},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {
                "0:done",
                "1:the job failed",
                "2:usage or input error",
                "3:the server failed to start",
                "4:port held by a process tether does not manage",
                "129:stopped by SIGHUP, a hangup (after the server tree was gone)",
                "130:stopped by Ctrl-C (after the server tree was gone)",
                "143:stopped by SIGTERM (after the server tree was gone)"})
public final class TetherCommand implements Runnable {

    @Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT,
            description = "Show stack traces for failures.")
    boolean debug;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is needed");
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the command line and returns the exit code (tests call this in-process). */
    public static int execute(String... args) {
        CommandLine cli = commandLine();
        return cli.execute(args);
    }

    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new TetherCommand());
        cli.setExecutionExceptionHandler(TetherCommand::onFailure);
        cli.setParameterExceptionHandler(TetherCommand::onBadUsage);
        // exec: the job's words start at the first positional (or after --); --model may repeat (one server each).
        cli.getSubcommands().get("exec").setStopAtPositional(true).setOverwrittenOptionsAllowed(true);
        return cli;
    }

    private static boolean debugRequested(CommandLine cli) {
        CommandLine root = cli;
        while (root.getParent() != null) {
            root = root.getParent();
        }
        return root.getCommand() instanceof TetherCommand t && t.debug;
    }

    private static int onFailure(Exception e, CommandLine cli, CommandLine.ParseResult parsed) {
        if (Interrupts.exiting()) {
            // A signal's exit is under way (its line is printed, its code wins): what failed now is its
            // consequence (requests cut off as the servers stop), not news.
            return ExitCode.INTERRUPTED;
        }
        PrintWriter err = cli.getErr();
        if (e instanceof CliError error) {
            err.println("tether: " + error.getMessage());
            if (debugRequested(cli)) {
                error.printStackTrace(err);
            }
            err.flush();
            return error.exitCode();
        }
        if (e instanceof dev.tether.server.StateException state) {
            // A full or read-only TETHER_HOME: the job failed; whatever was started has been stopped.
            err.println("tether: " + state.getMessage());
            if (debugRequested(cli)) {
                e.printStackTrace(err);
            }
            err.flush();
            return ExitCode.JOB_FAILED;
        }
        err.println("tether: unexpected failure: " + e + (debugRequested(cli) ? "" : " (run again with --debug for details)"));
        if (debugRequested(cli)) {
            e.printStackTrace(err);
        }
        err.flush();
        return ExitCode.JOB_FAILED;
    }

    private static int onBadUsage(CommandLine.ParameterException e, String[] args) {
        CommandLine cli = e.getCommandLine();
        PrintWriter err = cli.getErr();
        String name = cli.getCommandSpec().qualifiedName();
        err.println("tether: " + e.getMessage() + " (see `" + name + " --help`)");
        err.flush();
        return ExitCode.USAGE;
    }

    /** Guards commands that read /proc: other platforms get one honest line. */
    static void requireLinux() {
        if (!ProcFs.available()) {
            throw new CliError(ExitCode.USAGE, "this command needs Linux's /proc (tether's process control is tested on Linux only; "
                    + "macOS and Windows are not supported yet)");
        }
    }

    /** Version from the jar manifest, and the commit the build came from (dev/tether/build.properties, written by the build). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = TetherCommand.class.getPackage().getImplementationVersion();
            return new String[] {"tether " + (v == null ? "(development build)" : v) + ", commit " + commit()
                    + " — Java " + Runtime.version() + ", " + System.getProperty("os.name") + " " + System.getProperty("os.arch")};
        }

        static String commit() {
            try (var in = TetherCommand.class.getResourceAsStream("/dev/tether/build.properties")) {
                if (in == null) {
                    return "unknown";
                }
                java.util.Properties p = new java.util.Properties();
                p.load(in);
                return p.getProperty("commit", "unknown").strip();
            } catch (java.io.IOException e) {
                return "unknown";
            }
        }
    }
}
