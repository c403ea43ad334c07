package dev.tether.proc;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Listening TCP sockets from the kernel's sock_diag netlink interface (what {@code ss -l} uses): a dump
 * restricted to the LISTEN state walks only the listening hash. Reading {@code /proc/net/tcp} walks the
 * whole connection hash table instead — about 6 ms per file on this project's machine even when it lists
 * nothing, 12 ms for tcp and tcp6, paid on every port check of a stop and of a start (BENCHMARKS.md).
 * {@link PortListeners} falls back to the files when netlink is unavailable (returns null here).
 */
final class SockDiag {
    private static final int AF_NETLINK = 16;
    private static final int SOCK_DGRAM = 2;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int NETLINK_SOCK_DIAG = 4;
    private static final short SOCK_DIAG_BY_FAMILY = 20;
    private static final short NLM_F_REQUEST = 0x1;
    private static final short NLM_F_DUMP = 0x300;
    private static final int NLMSG_ERROR = 2;
    private static final int NLMSG_DONE = 3;
    private static final int AF_INET = 2;
    private static final int AF_INET6 = 10;
    private static final int IPPROTO_TCP = 6;
    private static final int TCP_LISTEN = 10;
    private static final int HEADER = 16;          // struct nlmsghdr
    private static final int REQUEST = 56;         // struct inet_diag_req_v2
    private static final int MESSAGE = 72;         // struct inet_diag_msg
    private static final ValueLayout.OfShort NET_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt HOST_INT = ValueLayout.JAVA_INT_UNALIGNED;
    private static final ValueLayout.OfShort HOST_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED;

    private static volatile boolean unavailable;

    private SockDiag() {}

    /** Listening sockets on the port by inode (IPv4 and IPv6), or null when netlink cannot be used. */
    static Map<Long, PortListeners.Listener> listening(int port) {
        if (unavailable) {
            return null;
        }
        Map<Long, PortListeners.Listener> found = new LinkedHashMap<>();
        try {
            if (!dump(AF_INET, port, found) || !dump(AF_INET6, port, found)) {
                unavailable = true;
                return null;
            }
        } catch (RuntimeException | LinkageError e) {
            unavailable = true;
            return null;
        }
        return found;
    }

    private static boolean dump(int family, int port, Map<Long, PortListeners.Listener> into) {
        int fd = LibC.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0) {
            return false;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment request = arena.allocate(HEADER + REQUEST);   // zeroed
            request.set(HOST_INT, 0, HEADER + REQUEST);
            request.set(HOST_SHORT, 4, SOCK_DIAG_BY_FAMILY);
            request.set(HOST_SHORT, 6, (short) (NLM_F_REQUEST | NLM_F_DUMP));
            request.set(HOST_INT, 8, 1);                                 // sequence number
            request.set(ValueLayout.JAVA_BYTE, HEADER, (byte) family);
            request.set(ValueLayout.JAVA_BYTE, HEADER + 1, (byte) IPPROTO_TCP);
            request.set(HOST_INT, HEADER + 4, 1 << TCP_LISTEN);          // states
            request.set(NET_SHORT, HEADER + 8, (short) port);            // id.sport: the kernel filters by it
            if (LibC.send(fd, request) != HEADER + REQUEST) {
                return false;
            }
            MemorySegment buffer = arena.allocate(65536);
            while (true) {
                int n = LibC.recv(fd, buffer);
                if (n <= 0) {
                    return false;
                }
                for (int at = 0; at + HEADER <= n; ) {
                    int length = buffer.get(HOST_INT, at);
                    int type = Short.toUnsignedInt(buffer.get(HOST_SHORT, at + 4));
                    if (type == NLMSG_DONE) {
                        return true;
                    }
                    if (type == NLMSG_ERROR || length < HEADER) {
                        return false;
                    }
                    if (length >= HEADER + MESSAGE) {
                        read(buffer.asSlice(at + HEADER, MESSAGE), port, into);
                    }
                    at += (length + 3) & ~3;
                }
            }
        } finally {
            LibC.close(fd);
        }
    }

    /** One struct inet_diag_msg. */
    private static void read(MemorySegment m, int port, Map<Long, PortListeners.Listener> into) {
        int family = Byte.toUnsignedInt(m.get(ValueLayout.JAVA_BYTE, 0));
        int state = Byte.toUnsignedInt(m.get(ValueLayout.JAVA_BYTE, 1));
        int sport = Short.toUnsignedInt(m.get(NET_SHORT, 4));
        if (state != TCP_LISTEN || sport != port) {
            return;
        }
        byte[] source = new byte[family == AF_INET ? 4 : 16];
        MemorySegment.copy(m, ValueLayout.JAVA_BYTE, 8, source, 0, source.length);
        int uid = m.get(HOST_INT, 64);
        long inode = Integer.toUnsignedLong(m.get(HOST_INT, 68));
        into.put(inode, new PortListeners.Listener(port, PortListeners.formatAddress(source), inode, uid,
                java.util.List.of()));
    }
}
