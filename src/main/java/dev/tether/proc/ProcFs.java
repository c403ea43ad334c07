package dev.tether.proc;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Reads Linux's {@code /proc}. Every method tolerates the process vanishing between two reads: a
 * missing or unreadable entry is an empty result, never an exception.
 */
public final class ProcFs {
    private static final Path PROC = Path.of("/proc");
    private static volatile String bootId;

    private ProcFs() {}

    public static boolean available() {
        return Files.isReadable(PROC.resolve("self/stat"));
    }

    /** {@code /proc/sys/kernel/random/boot_id}: changes on every boot, so identities never outlive one. */
    public static String bootId() {
        String id = bootId;
        if (id == null) {
            try {
                id = Files.readString(PROC.resolve("sys/kernel/random/boot_id")).trim();
            } catch (IOException e) {
                id = "unknown-boot";
            }
            bootId = id;
        }
        return id;
    }

    /** Every pid now in /proc (threads are not listed at top level). */
    public static List<Integer> pids() {
        List<Integer> pids = new ArrayList<>(256);
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(PROC)) {
            for (Path dir : dirs) {
                String name = dir.getFileName().toString();
                if (!name.isEmpty() && Character.isDigit(name.charAt(0))) {
                    pids.add(Integer.parseInt(name));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc", e);
        }
        return pids;
    }

    public static Optional<ProcStat> stat(int pid) {
        try {
            return Optional.of(ProcStat.parse(Files.readString(PROC.resolve(pid + "/stat"))));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** The real uid, from the "Uid:" line of {@code /proc/<pid>/status}. */
    public static Optional<Integer> uid(int pid) {
        try {
            for (String line : Files.readAllLines(PROC.resolve(pid + "/status"))) {
                if (line.startsWith("Uid:")) {
                    return Optional.of(Integer.parseInt(line.substring(4).trim().split("\\s+")[0]));
                }
            }
        } catch (IOException | RuntimeException e) {
            // gone or unreadable
        }
        return Optional.empty();
    }

    /** The user name owning the process, or the uid as text when it has no name. */
    public static String userName(int pid) {
        try {
            return Files.getOwner(PROC.resolve(String.valueOf(pid))).getName();
        } catch (IOException | RuntimeException e) {
            return uid(pid).map(String::valueOf).orElse("?");
        }
    }

    /** The argv, space-joined; a kernel thread or a vanished process gives "[comm]" or "". */
    public static String commandLine(int pid) {
        try {
            byte[] raw = Files.readAllBytes(PROC.resolve(pid + "/cmdline"));
            int end = raw.length;
            while (end > 0 && raw[end - 1] == 0) {
                end--;
            }
            if (end == 0) {
                return stat(pid).map(s -> "[" + s.comm() + "]").orElse("");
            }
            return new String(raw, 0, end, StandardCharsets.UTF_8).replace('\0', ' ');
        } catch (IOException e) {
            return "";
        }
    }

    /**
     * Whether the environment the process started with contains exactly this {@code KEY=value}
     * entry. Unreadable (another user's process, or gone) reads as false.
     */
    public static boolean environContains(int pid, String entry) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(PROC.resolve(pid + "/environ"));
        } catch (IOException e) {
            return false;
        }
        byte[] needle = entry.getBytes(StandardCharsets.UTF_8);
        int start = 0;
        for (int i = 0; i <= raw.length; i++) {
            if (i == raw.length || raw[i] == 0) {
                if (i - start == needle.length && java.util.Arrays.equals(raw, start, i, needle, 0, needle.length)) {
                    return true;
                }
                start = i + 1;
            }
        }
        return false;
    }

    /** Value of one variable in the process's initial environment, if readable and present. */
    public static Optional<String> environValue(int pid, String key) {
        byte[] raw;
        try {
            raw = Files.readAllBytes(PROC.resolve(pid + "/environ"));
        } catch (IOException e) {
            return Optional.empty();
        }
        String prefix = key + "=";
        for (String entry : new String(raw, StandardCharsets.UTF_8).split("\0")) {
            if (entry.startsWith(prefix)) {
                return Optional.of(entry.substring(prefix.length()));
            }
        }
        return Optional.empty();
    }

    /** Socket inodes this process holds open ({@code socket:[N]} links under fd/). */
    public static List<Long> socketInodes(int pid) {
        List<Long> inodes = new ArrayList<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(PROC.resolve(pid + "/fd"))) {
            for (Path fd : fds) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.startsWith("socket:[")) {
                        inodes.add(Long.parseLong(target, 8, target.length() - 1, 10));
                    }
                } catch (IOException | RuntimeException e) {
                    // fd closed between listing and reading
                }
            }
        } catch (IOException | RuntimeException e) {
            // gone, or not ours to read
        }
        return inodes;
    }

    /**
     * The children of a process, from {@code /proc/<pid>/task/<tid>/children} (a few small reads; no scan
     * of every process). Empty when it is gone.
     */
    public static List<Integer> children(int pid) {
        List<Integer> children = new ArrayList<>();
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(PROC.resolve(pid + "/task"))) {
            for (Path task : tasks) {
                try {
                    for (String word : Files.readString(task.resolve("children")).trim().split("\\s+")) {
                        if (!word.isEmpty()) {
                            children.add(Integer.parseInt(word));
                        }
                    }
                } catch (IOException | RuntimeException e) {
                    // the thread ended meanwhile
                }
            }
        } catch (IOException | RuntimeException e) {
            // gone
        }
        return children;
    }
}
