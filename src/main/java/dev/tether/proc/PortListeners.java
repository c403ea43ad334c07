package dev.tether.proc;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Who listens on a TCP port, from {@code /proc/net/tcp}, {@code /proc/net/tcp6} and the socket links
 * under {@code /proc/<pid>/fd} (DESIGN 3.7). Only sockets in LISTEN state count: a client connected
 * to the port (the seed's {@code lsof -ti :8000} matched those, itself included) is never an owner.
 */
public final class PortListeners {
    private static final String LISTEN = "0A";
    private static final Path[] TABLES = {Path.of("/proc/net/tcp"), Path.of("/proc/net/tcp6")};

    /** One listening socket and the processes holding it (forked workers often share one). */
    public record Listener(int port, String address, long inode, int uid, List<ProcessIdentity> holders) {}

    private PortListeners() {}

    public static boolean isValidPort(long port) {
        return port >= 1 && port <= 65535;
    }

    /** Whether any socket listens on the port, on any address. Cheap: reads the two tables only. */
    public static boolean isListening(int port) {
        return !listeningInodes(port).isEmpty();
    }

    /** The inodes of the sockets listening on the port (no holders looked up: cheap, like {@link #isListening}). */
    public static Set<Long> listeningSockets(int port) {
        return Set.copyOf(listeningInodes(port).keySet());
    }

    /** Listening sockets on the port with their holders. */
    public static List<Listener> find(int port) {
        Map<Long, Listener> sockets = listeningInodes(port);
        if (sockets.isEmpty()) {
            return List.of();
        }
        Map<Long, List<ProcessIdentity>> holders = new HashMap<>();
        for (int pid : ProcFs.pids()) {
            for (long inode : ProcFs.socketInodes(pid)) {
                if (sockets.containsKey(inode)) {
                    ProcessIdentity.of(pid).ifPresent(id ->
                            holders.computeIfAbsent(inode, k -> new ArrayList<>()).add(id));
                }
            }
        }
        List<Listener> result = new ArrayList<>();
        sockets.forEach((inode, l) -> result.add(new Listener(l.port(), l.address(), inode, l.uid(),
                List.copyOf(holders.getOrDefault(inode, List.of())))));
        return result;
    }

    /** Pids of every process holding a listening socket on the port. */
    public static Set<Integer> holderPids(int port) {
        Set<Integer> pids = new java.util.TreeSet<>();
        for (Listener l : find(port)) {
            l.holders().forEach(h -> pids.add(h.pid()));
        }
        return pids;
    }

    private static Map<Long, Listener> listeningInodes(int port) {
        Map<Long, Listener> viaNetlink = SockDiag.listening(port);
        return viaNetlink != null ? viaNetlink : fromProcTables(port);
    }

    /** The same from {@code /proc/net/tcp{,6}} (slow: see {@link SockDiag}); where netlink is not available. */
    static Map<Long, Listener> fromProcTables(int port) {
        Map<Long, Listener> found = new LinkedHashMap<>();
        for (Path table : TABLES) {
            List<String> lines;
            try {
                lines = Files.readAllLines(table);
            } catch (IOException e) {
                continue;   // no IPv6, say
            }
            boolean v6 = table.getFileName().toString().endsWith("6");
            for (int i = 1; i < lines.size(); i++) {
                String[] f = lines.get(i).trim().split("\\s+");
                if (f.length < 10 || !LISTEN.equals(f[3])) {
                    continue;
                }
                String local = f[1];
                int colon = local.lastIndexOf(':');
                if (Integer.parseInt(local.substring(colon + 1), 16) != port) {
                    continue;
                }
                long inode = Long.parseLong(f[9]);
                String address = decodeAddress(local.substring(0, colon), v6);
                found.put(inode, new Listener(port, address, inode, Integer.parseInt(f[7]), List.of()));
            }
        }
        return found;
    }

    /** Kernel hex form (each 32-bit word in host byte order, little-endian here) to text. */
    static String decodeAddress(String hex, boolean v6) {
        if (!v6) {
            long v = Long.parseLong(hex, 16);
            return (v & 0xff) + "." + ((v >> 8) & 0xff) + "." + ((v >> 16) & 0xff) + "." + ((v >> 24) & 0xff);
        }
        byte[] bytes = new byte[16];
        for (int word = 0; word < 4; word++) {
            long v = Long.parseLong(hex.substring(word * 8, word * 8 + 8), 16);
            for (int b = 0; b < 4; b++) {
                bytes[word * 4 + b] = (byte) (v >> (8 * b));
            }
        }
        if (isIpv4Mapped(bytes)) {   // a dual-stack socket bound to an IPv4 address (Java does this)
            return (bytes[12] & 0xff) + "." + (bytes[13] & 0xff) + "." + (bytes[14] & 0xff) + "." + (bytes[15] & 0xff);
        }
        int[] groups = new int[8];
        for (int g = 0; g < 8; g++) {
            groups[g] = ((bytes[2 * g] & 0xff) << 8) | (bytes[2 * g + 1] & 0xff);
        }
        return "[" + compressIpv6(groups) + "]";
    }

    /** An address as the kernel gives it (4 or 16 bytes, network order) to text, as {@link #decodeAddress} does. */
    static String formatAddress(byte[] bytes) {
        if (bytes.length == 4) {
            return (bytes[0] & 0xff) + "." + (bytes[1] & 0xff) + "." + (bytes[2] & 0xff) + "." + (bytes[3] & 0xff);
        }
        if (isIpv4Mapped(bytes)) {
            return (bytes[12] & 0xff) + "." + (bytes[13] & 0xff) + "." + (bytes[14] & 0xff) + "." + (bytes[15] & 0xff);
        }
        int[] groups = new int[8];
        for (int g = 0; g < 8; g++) {
            groups[g] = ((bytes[2 * g] & 0xff) << 8) | (bytes[2 * g + 1] & 0xff);
        }
        return "[" + compressIpv6(groups) + "]";
    }

    private static boolean isIpv4Mapped(byte[] b) {
        for (int i = 0; i < 10; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return (b[10] & 0xff) == 0xff && (b[11] & 0xff) == 0xff;
    }

    /** RFC 5952 text: the longest run of two or more zero groups becomes "::". */
    private static String compressIpv6(int[] groups) {
        int bestStart = -1;
        int bestLength = 1;
        for (int i = 0; i < 8; ) {
            int j = i;
            while (j < 8 && groups[j] == 0) {
                j++;
            }
            if (j - i > bestLength) {
                bestStart = i;
                bestLength = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        StringBuilder text = new StringBuilder();
        for (int g = 0; g < 8; g++) {
            if (g == bestStart) {
                text.append("::");
                g += bestLength - 1;
                continue;
            }
            if (text.length() > 0 && text.charAt(text.length() - 1) != ':') {
                text.append(':');
            }
            text.append(Integer.toHexString(groups[g]));
        }
        return text.toString();
    }
}
