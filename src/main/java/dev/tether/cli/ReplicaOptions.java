package dev.tether.cli;

import dev.tether.server.GpuSlices;
import dev.tether.server.Placement;
import dev.tether.server.ServerSpec;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * {@code --replicas N [--gpus-per-replica K] [--gpus LIST]} (a mixin of run, serve and exec): N servers of one spec,
 * each on its own free port, each with its own slice of the GPUs.
 */
final class ReplicaOptions {
    /** More than this is a typo, not a pool (each replica is a server tree and a shim). */
    static final int MAX_REPLICAS = 64;

    @Option(names = "--replicas", paramLabel = "N", defaultValue = "1",
            description = "Servers of the same spec for this job, started in parallel, each on a free port (--port auto "
                    + "is implied for N > 1) and each tethered; requests go to the least busy (default: ${DEFAULT-VALUE}).")
    int replicas;

    @Option(names = "--gpus-per-replica", paramLabel = "K",
            description = "Give each replica its own K GPUs as CUDA_VISIBLE_DEVICES (from --gpus, else this shell's "
                    + "CUDA_VISIBLE_DEVICES, else nvidia-smi -L); refused when there are too few.")
    Integer gpusPerReplica;

    @Option(names = "--gpus", paramLabel = "LIST", split = ",",
            description = "The GPUs to share out among the replicas, e.g. 0,1,2,3 (default K = their number / N).")
    List<String> gpus;

    /**
     * Checks the options against each other and against the server options (one line, exit 2, nothing started).
     *
     * @param portGiven whether --port was given on the command line
     */
    void check(CommandLine.Model.CommandSpec spec, boolean portGiven, String port) {
        if (replicas < 1 || replicas > MAX_REPLICAS) {
            throw CliError.usage("--replicas must be from 1 to " + MAX_REPLICAS + ", not " + replicas);
        }
        if (replicas > 1 && portGiven && !"auto".equals(port)) {
            throw CliError.usage("--replicas " + replicas + " starts each replica on a free port of its own: drop --port "
                    + port + " (or give --port auto)");
        }
        if (gpusPerReplica != null && gpusPerReplica < 1) {
            throw CliError.usage("--gpus-per-replica must be at least 1, not " + gpusPerReplica);
        }
        if (gpus != null && gpus.stream().anyMatch(g -> !g.strip().matches("[0-9]+|(GPU|MIG)-[0-9A-Za-z/-]+"))) {
            throw CliError.usage("--gpus takes GPU indices or UUIDs separated by commas (for example 0,1,2,3), not '"
                    + String.join(",", gpus) + "'");
        }
    }

    /** Whether anything here asks for more than one plain server. */
    boolean pooled() {
        return replicas > 1 || gpusPerReplica != null || gpus != null;
    }

    /**
     * The N specs of a pool for one model: {@code base} on free ports, with their placements (a group id shared
     * by the pool, for {@code ps}) and GPU slices. One replica without GPU options is {@code base} itself.
     */
    List<ServerSpec> place(ServerSpec base, String group) {
        if (!pooled()) {
            return List.of(base);
        }
        List<String> slices = gpuSlices();
        List<ServerSpec> specs = new ArrayList<>();
        for (int i = 0; i < replicas; i++) {
            Map<String, String> env = slices == null ? Map.of() : Map.of(GpuSlices.ENV, slices.get(i));
            ServerSpec spec = replicas > 1 ? base.withPort(ServerSpec.AUTO_PORT) : base;
            specs.add(spec.withPlacement(new Placement(replicas > 1 ? group : null, i + 1, replicas, env)));
        }
        return specs;
    }

    /** One CUDA_VISIBLE_DEVICES per replica, or null when no GPU option was given. */
    private List<String> gpuSlices() {
        if (gpusPerReplica == null && gpus == null) {
            return null;
        }
        GpuSlices.Devices devices;
        try {
            devices = GpuSlices.devices(gpus == null ? null : gpus.stream().map(String::strip).toList());
        } catch (IllegalStateException e) {
            throw CliError.usage(e.getMessage() + "; name the GPUs with --gpus 0,1,...");
        }
        int k = gpusPerReplica != null ? gpusPerReplica : Math.max(1, devices.ids().size() / replicas);
        try {
            return GpuSlices.slices(devices, k, replicas);
        } catch (IllegalArgumentException e) {
            throw CliError.usage(e.getMessage());
        }
    }

    /** A pool's group id: ps shows the replicas of one run under it. */
    static String newGroup() {
        byte[] random = new byte[3];
        ThreadLocalRandom.current().nextBytes(random);
        return "p" + HexFormat.of().formatHex(random);
    }
}
