package dev.tether.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.tether.proc.Member;
import dev.tether.proc.ProcessTree;
import dev.tether.server.Lease;
import dev.tether.server.LeaseStore;
import dev.tether.server.ServerEvents;
import dev.tether.server.ServerManager;
import dev.tether.server.TetherHome;
import java.io.PrintWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code tether ps [--json]}: the managed servers. */
@Command(name = "ps", mixinStandardHelpOptions = true,
        description = "List managed servers: id, model, port, pids, owner, state, uptime.")
final class PsCommand implements Callable<Integer> {

    @Option(names = "--json", description = "One JSON array, for scripts.")
    boolean json;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        TetherCommand.requireLinux();
        PrintWriter out = spec.commandLine().getOut();
        ServerManager manager = new ServerManager(TetherHome.fromEnvironment(), ServerEvents.NONE);
        List<Map<String, Object>> rows = new ArrayList<>();
        // The replicas of one pool stand together, in order; lone servers keep their place.
        List<Lease> leases = new ArrayList<>(manager.leases());
        List<Lease> ordered = new ArrayList<>();
        for (Lease lease : leases) {
            if (ordered.contains(lease)) {
                continue;
            }
            if (lease.replicated()) {
                leases.stream().filter(l -> l.replicated() && l.placement().group().equals(lease.placement().group()))
                        .sorted(java.util.Comparator.comparingInt(l -> l.placement().index())).forEach(ordered::add);
            } else {
                ordered.add(lease);
            }
        }
        boolean pools = ordered.stream().anyMatch(Lease::replicated);
        for (Lease lease : ordered) {
            rows.add(row(lease));
        }
        List<LeaseStore.Damaged> damaged = manager.damagedLeases();
        for (LeaseStore.Damaged d : damaged) {
            rows.add(row(d));
        }
        if (json) {
            ObjectMapper mapper = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
            out.println(mapper.writeValueAsString(rows));
            return ExitCode.OK;
        }
        if (rows.isEmpty()) {
            out.println("No managed servers.");
            return ExitCode.OK;
        }
        // A POOL column only when some server is a replica ("p1a2b3c 2/3"): the usual table stays as it was.
        String format = "%-16s %-24s %6s  %-8s " + (pools ? "%-13s " : "%s") + "%-22s %-12s %s%n";
        out.printf(format, "ID", "MODEL", "PORT", "STATE", pools ? "POOL" : "", "OWNER", "UPTIME", "PIDS");
        for (Map<String, Object> r : rows) {
            String pool = r.get("pool") == null ? (pools ? "-" : "") : r.get("pool") + " " + r.get("replica") + "/" + r.get("replicas");
            out.printf(format, r.get("id"), abbreviate(String.valueOf(r.get("model")), 24), r.get("port") == null ? "?" : r.get("port"),
                    r.get("state"), pool, r.get("owner"), r.get("uptime"),
                    ((List<?>) r.get("pids")).stream().map(String::valueOf).collect(Collectors.joining(",")));
        }
        for (LeaseStore.Damaged d : damaged) {
            out.println(d.id() + ": damaged lease file " + d.file() + " (" + d.problem() + "); `tether reap` stops an orphan's "
                    + "processes, `tether stop " + d.id() + "` any (what the file still identifies), and moves the file aside");
        }
        return ExitCode.OK;
    }

    static Map<String, Object> row(Lease lease) {
        List<Integer> pids = new ProcessTree(lease.membership()).members().stream().map(Member::pid).toList();
        String state = lease.isOrphan() ? "orphan" : lease.state().name().toLowerCase();
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("id", lease.id());
        row.put("model", lease.model());
        row.put("profile", lease.profile());
        row.put("port", lease.port());
        row.put("url", lease.host() == null ? null : dev.tether.server.ServerSpec.baseUrl(lease.host(), lease.port()));
        row.put("state", state);
        row.put("owner", lease.owner() == null ? "-" : "tether pid " + lease.owner().pid() + (lease.ownerAlive() ? "" : " (gone)"));
        row.put("ownerPid", lease.owner() == null ? null : lease.owner().pid());
        row.put("serverPid", lease.server() == null ? null : lease.server().pid());
        row.put("pids", pids);
        // For scripts: numbers as numbers, the start as ISO-8601 (UTC); "uptime" is the text the table shows.
        row.put("startedAt", lease.startedAt() == null ? null : lease.startedAt().toString());
        row.put("uptimeSeconds", lease.startedAt() == null ? null : Duration.between(lease.startedAt(), Instant.now()).toSeconds());
        row.put("uptime", lease.startedAt() == null ? "-" : human(Duration.between(lease.startedAt(), Instant.now())));
        row.put("log", lease.logPath());
        var placement = lease.placement();
        row.put("pool", placement == null ? null : placement.group());
        row.put("replica", placement == null ? null : placement.index());
        row.put("replicas", placement == null ? null : placement.count());
        row.put("gpus", placement == null ? null : placement.env().get(dev.tether.server.GpuSlices.ENV));
        return row;
    }

    /** A damaged lease: what could be salvaged, state "damaged", and its file. */
    static Map<String, Object> row(LeaseStore.Damaged damaged) {
        Lease l = damaged.salvaged();
        Map<String, Object> row = row(l.state() == null ? l.withState(Lease.State.STARTING) : l);
        row.put("model", l.model() == null ? "?" : l.model());
        row.put("port", l.port() > 0 ? l.port() : null);
        row.put("state", "damaged");
        row.put("owner", l.owner() == null ? "?" : row.get("owner"));
        row.put("file", damaged.file().toString());
        row.put("problem", damaged.problem());
        return row;
    }

    static String human(Duration d) {
        long s = d.toSeconds();
        if (s < 60) {
            return s + "s";
        }
        if (s < 3600) {
            return s / 60 + "m" + s % 60 + "s";
        }
        return s / 3600 + "h" + (s % 3600) / 60 + "m";
    }

    private static String abbreviate(String s, int n) {
        return s.length() <= n ? s : "..." + s.substring(s.length() - n + 3);
    }
}
