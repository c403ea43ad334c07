package dev.tether.proc;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * Every native call tether makes, in one place (the NuProcess pattern): the rest of the code calls
 * plain Java methods and never touches {@code java.lang.foreign}.
 *
 * <p>Calls return the C result; a failing call (-1) leaves its {@code errno} readable through
 * {@link #lastErrno()} on the same thread. Linux x86-64 and aarch64 only (syscall numbers are the
 * generic ones shared by both for the calls used here, except where noted).
 */
public final class LibC {
    public static final int ESRCH = 3;
    public static final int ECHILD = 10;
    public static final int EPERM = 1;
    public static final int ENOSYS = 38;
    public static final int EINVAL = 22;

    public static final int PR_SET_CHILD_SUBREAPER = 36;
    public static final int PR_GET_CHILD_SUBREAPER = 37;
    public static final int WNOHANG = 1;

    // pidfd_send_signal and pidfd_open have the same numbers on x86-64 and aarch64 (unified table since 5.1).
    private static final long SYS_PIDFD_SEND_SIGNAL = 424;
    private static final long SYS_PIDFD_OPEN = 434;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CALL_STATE.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle KILL = function("kill",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle PRCTL = function("prctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL3 = function("syscall",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL5 = function("syscall",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            Linker.Option.firstVariadicArg(1));
    private static final MethodHandle CLOSE = function("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle WAITPID = function("waitpid",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    private static final MethodHandle GETUID = function("getuid", FunctionDescriptor.of(ValueLayout.JAVA_INT));
    private static final MethodHandle SOCKET = function("socket",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle SEND = function("send",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT));
    private static final MethodHandle RECV = function("recv",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT));

    private static final ThreadLocal<Integer> LAST_ERRNO = ThreadLocal.withInitial(() -> 0);

    private LibC() {}

    private static MethodHandle function(String name, FunctionDescriptor descriptor, Linker.Option... extra) {
        MemorySegment address = LIBC.find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        Linker.Option[] options = new Linker.Option[extra.length + 1];
        options[0] = CAPTURE_ERRNO;
        System.arraycopy(extra, 0, options, 1, extra.length);
        return LINKER.downcallHandle(address, descriptor, options);
    }

    /** errno of the last failing call made through this class on the current thread. */
    public static int lastErrno() {
        return LAST_ERRNO.get();
    }

    private static int record(MemorySegment state, long result) {
        if (result == -1) {
            LAST_ERRNO.set((int) ERRNO.get(state, 0L));
        }
        return (int) result;
    }

    /** kill(2). A negative pid signals a process group. */
    public static int kill(int pid, int signal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (int) KILL.invokeExact(state, pid, signal));
        } catch (Throwable t) {
            throw new IllegalStateException("kill failed to link", t);
        }
    }

    /** prctl(2) with all five arguments. */
    public static int prctl(int option, long arg2) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (int) PRCTL.invokeExact(state, option, arg2, 0L, 0L, 0L));
        } catch (Throwable t) {
            throw new IllegalStateException("prctl failed to link", t);
        }
    }

    /** PR_GET_CHILD_SUBREAPER: whether this process is currently a child subreaper. */
    public static boolean isChildSubreaper() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment flag = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment state = arena.allocate(CALL_STATE);
            int rc = record(state,
                    (int) PRCTL.invokeExact(state, PR_GET_CHILD_SUBREAPER, flag.address(), 0L, 0L, 0L));
            return rc == 0 && flag.get(ValueLayout.JAVA_INT, 0) != 0;
        } catch (Throwable t) {
            throw new IllegalStateException("prctl failed to link", t);
        }
    }

    /** pidfd_open(2): a file descriptor that refers to exactly this process, even if its pid is reused later. */
    public static int pidfdOpen(int pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (long) SYSCALL3.invokeExact(state, SYS_PIDFD_OPEN, (long) pid, 0L, 0L));
        } catch (Throwable t) {
            throw new IllegalStateException("syscall failed to link", t);
        }
    }

    /** pidfd_send_signal(2) with no siginfo and no flags. */
    public static int pidfdSendSignal(int pidfd, int signal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (long) SYSCALL5.invokeExact(state, SYS_PIDFD_SEND_SIGNAL,
                    (long) pidfd, (long) signal, 0L, 0L, 0L));
        } catch (Throwable t) {
            throw new IllegalStateException("syscall failed to link", t);
        }
    }

    public static int close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (int) CLOSE.invokeExact(state, fd));
        } catch (Throwable t) {
            throw new IllegalStateException("close failed to link", t);
        }
    }

    /**
     * waitpid(pid, &status, WNOHANG) for one specific child. Never called with -1: the JVM's own
     * process reaper waits for the children it spawned and must not have them stolen.
     *
     * @return the pid reaped, 0 if it has not exited, -1 on error (see {@link #lastErrno()})
     */
    public static int waitpidNoHang(int pid) {
        if (pid <= 0) {
            throw new IllegalArgumentException("waitpid only for one specific pid, not " + pid);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (int) WAITPID.invokeExact(state, pid, status, WNOHANG));
        } catch (Throwable t) {
            throw new IllegalStateException("waitpid failed to link", t);
        }
    }

    public static int getuid() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return (int) GETUID.invokeExact(state);
        } catch (Throwable t) {
            throw new IllegalStateException("getuid failed to link", t);
        }
    }

    /** socket(2). */
    public static int socket(int domain, int type, int protocol) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (int) SOCKET.invokeExact(state, domain, type, protocol));
        } catch (Throwable t) {
            throw new IllegalStateException("socket failed to link", t);
        }
    }

    /** send(2) of the whole segment; the bytes sent, or -1. */
    public static int send(int fd, MemorySegment data) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (long) SEND.invokeExact(state, fd, data, data.byteSize(), 0));
        } catch (Throwable t) {
            throw new IllegalStateException("send failed to link", t);
        }
    }

    /** recv(2) into the segment; the bytes received, or -1. */
    public static int recv(int fd, MemorySegment buffer) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            return record(state, (long) RECV.invokeExact(state, fd, buffer, buffer.byteSize(), 0));
        } catch (Throwable t) {
            throw new IllegalStateException("recv failed to link", t);
        }
    }
}
