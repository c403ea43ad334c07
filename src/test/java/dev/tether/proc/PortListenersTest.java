package dev.tether.proc;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import org.junit.jupiter.api.Test;

class PortListenersTest {
    private static final int SELF = (int) ProcessHandle.current().pid();

    @Test
    void findsAListenerAndTheProcessHoldingIt() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            int port = server.getLocalPort();
            assertThat(PortListeners.isListening(port)).isTrue();
            var listeners = PortListeners.find(port);
            assertThat(listeners).hasSize(1);
            assertThat(listeners.getFirst().address()).isEqualTo("127.0.0.1");
            assertThat(listeners.getFirst().holders()).extracting(ProcessIdentity::pid).containsExactly(SELF);
        }
    }

    @Test
    void aClientConnectedToThePortIsNotAnOwner() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
             Socket client = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            int clientPort = client.getLocalPort();
            assertThat(accepted.isConnected()).isTrue();
            // The client's own port has an established socket but no listener.
            assertThat(PortListeners.isListening(clientPort)).isFalse();
            assertThat(PortListeners.find(server.getLocalPort()).getFirst().holders()).hasSize(1);
        }
    }

    @Test
    void nothingListeningIsAnEmptyAnswer() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        assertThat(PortListeners.find(port)).isEmpty();
        assertThat(PortListeners.isListening(port)).isFalse();
    }

    @Test
    void findsAnIpv6Listener() throws Exception {
        try (ServerSocket server = new ServerSocket()) {
            server.bind(new InetSocketAddress(InetAddress.getByName("::"), 0));
            var listeners = PortListeners.find(server.getLocalPort());
            assertThat(listeners).hasSize(1);
            assertThat(listeners.getFirst().address()).isIn("[::]", "0.0.0.0");
        }
    }

    @Test
    void netlinkAndTheProcTablesAgree() throws Exception {
        try (ServerSocket v4 = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
             ServerSocket any = new ServerSocket()) {
            any.bind(new InetSocketAddress(InetAddress.getByName("::"), 0));
            for (int port : new int[] {v4.getLocalPort(), any.getLocalPort()}) {
                var viaNetlink = SockDiag.listening(port);
                assertThat(viaNetlink).as("sock_diag answers on this machine").isNotNull().hasSize(1);
                assertThat(viaNetlink).isEqualTo(PortListeners.fromProcTables(port));
            }
            int closed;
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                closed = s.getLocalPort();
            }
            assertThat(SockDiag.listening(closed)).isEmpty();
        }
    }

    @Test
    void decodesKernelHexAddresses() {
        assertThat(PortListeners.decodeAddress("0100007F", false)).isEqualTo("127.0.0.1");
        assertThat(PortListeners.decodeAddress("00000000", false)).isEqualTo("0.0.0.0");
        assertThat(PortListeners.decodeAddress("00000000000000000000000001000000", true)).isEqualTo("[::1]");
        assertThat(PortListeners.decodeAddress("00000000000000000000000000000000", true)).isEqualTo("[::]");
        assertThat(PortListeners.decodeAddress("0000000000000000FFFF00000100007F", true)).isEqualTo("127.0.0.1");
    }
}
