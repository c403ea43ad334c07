package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Where tether keeps its state (DESIGN 1): $TETHER_HOME, else $XDG_STATE_HOME/tether, else ~/.local/state/tether. */
class TetherHomeTest {
    @Test
    void tetherHomeComesFirst() {
        assertThat(TetherHome.fromEnvironment(Map.of("TETHER_HOME", "/srv/t", "XDG_STATE_HOME", "/x")).root())
                .isEqualTo(Path.of("/srv/t"));
    }

    @Test
    void thenTheXdgStateDirectory() {
        assertThat(TetherHome.fromEnvironment(Map.of("TETHER_HOME", " ", "XDG_STATE_HOME", "/x/state")).root())
                .isEqualTo(Path.of("/x/state/tether"));
    }

    @Test
    void thenTheUsersLocalState() {
        assertThat(TetherHome.fromEnvironment(Map.of()).root())
                .isEqualTo(Path.of(System.getProperty("user.home"), ".local", "state", "tether"));
    }

    @Test
    void aRelativeHomeIsMadeAbsolute() {
        assertThat(TetherHome.fromEnvironment(Map.of("TETHER_HOME", "rel/home")).root())
                .isEqualTo(Path.of("rel/home").toAbsolutePath());
    }
}
