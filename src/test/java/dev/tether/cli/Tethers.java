package dev.tether.cli;

import static dev.tether.cli.TetherHomes.assertNoProcessesOf;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The tethers a test runs in the background under one TETHER_HOME. After each test it closes them (SIGKILL
 * if still running) and fails the test if any process of that home is left. Register it on a field:
 * {@code @RegisterExtension final Tethers tethers = new Tethers(() -> dir.resolve("home"));} — the supplier is
 * read late, so it may use the test's {@code @TempDir}.
 */
public final class Tethers implements AfterEachCallback {
    private final Supplier<Path> home;
    private final List<BackgroundTether> started = new ArrayList<>();

    public Tethers(Supplier<Path> home) {
        this.home = home;
    }

    public Path home() {
        return home.get();
    }

    /** Starts {@code tether args...} in the background, in {@code workDir} (null: this JVM's). */
    public BackgroundTether start(Path workDir, String... args) throws IOException {
        BackgroundTether t = BackgroundTether.start(home(), workDir, args);
        started.add(t);
        return t;
    }

    @Override
    public void afterEach(ExtensionContext context) {
        started.forEach(BackgroundTether::close);
        started.clear();
        assertNoProcessesOf(home());
    }
}
