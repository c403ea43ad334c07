package dev.tether.server;

import java.util.ArrayList;
import java.util.List;

/**
 * Shares GPUs out among the replicas of a pool: replica i gets the i-th run of {@code perReplica} devices, as its
 * {@code CUDA_VISIBLE_DEVICES}. The devices are the user's list ({@code --gpus}), else the ones this tether may
 * already see ({@code CUDA_VISIBLE_DEVICES} of its own environment, as under Slurm), else what {@code nvidia-smi -L}
 * lists.
 */
public final class GpuSlices {
    public static final String ENV = "CUDA_VISIBLE_DEVICES";

    private GpuSlices() {}

    /** The devices to share out, and where they came from (for the refusal line). */
    public record Devices(List<String> ids, String source) {}

    public static Devices devices(List<String> given) {
        if (given != null && !given.isEmpty()) {
            return new Devices(List.copyOf(given), "--gpus");
        }
        String visible = System.getenv(ENV);
        if (visible != null && !visible.isBlank()) {
            List<String> ids = new ArrayList<>();
            for (String id : visible.split(",")) {
                if (!id.isBlank()) {
                    ids.add(id.strip());
                }
            }
            return new Devices(ids, ENV + " of this shell");
        }
        if (!GpuMemory.fromPath().available()) {
            return new Devices(List.of(), "this machine (no nvidia-smi on PATH, no " + ENV + ")");
        }
        return new Devices(GpuMemory.list(), "nvidia-smi -L");
    }

    /**
     * One {@code CUDA_VISIBLE_DEVICES} value per replica.
     *
     * @throws IllegalArgumentException too few devices, in one line that says how many were needed and found
     */
    public static List<String> slices(Devices devices, int perReplica, int replicas) {
        int needed = perReplica * replicas;
        if (devices.ids().size() < needed) {
            throw new IllegalArgumentException(replicas + (replicas == 1 ? " replica" : " replicas") + " of " + perReplica
                    + " GPU" + (perReplica == 1 ? "" : "s") + " need " + needed + " GPUs, and " + devices.source()
                    + (devices.ids().isEmpty() ? " gives none" : " gives " + devices.ids().size() + " (" + String.join(",", devices.ids()) + ")")
                    + "; lower --replicas or --gpus-per-replica, or name the GPUs with --gpus 0,1,...");
        }
        List<String> slices = new ArrayList<>();
        for (int r = 0; r < replicas; r++) {
            slices.add(String.join(",", devices.ids().subList(r * perReplica, (r + 1) * perReplica)));
        }
        return slices;
    }
}
