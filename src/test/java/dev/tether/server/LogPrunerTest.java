package dev.tether.server;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Logs older than 14 days, or beyond the 200 newest, are deleted at a launch; a live server's logs never. */
class LogPrunerTest {
    @TempDir
    Path logs;

    private Path log(String name, Instant modified) throws Exception {
        Path f = Files.writeString(logs.resolve(name), "line\n");
        Files.setLastModifiedTime(f, FileTime.from(modified));
        return f;
    }

    @Test
    void oldLogsAndTheOnesBeyondTheNewest200GoButALiveServersStay() throws Exception {
        Instant now = Instant.parse("2026-06-01T12:00:00Z");
        // 210 recent logs, one a minute: the 10 oldest of them are beyond the 200 newest.
        for (int i = 0; i < 210; i++) {
            log("t" + i + ".log", now.minus(Duration.ofMinutes(i)));
        }
        Path stale = log("old.log", now.minus(Duration.ofDays(15)));
        Path staleShim = log("old.log.shim", now.minus(Duration.ofDays(15)));
        Path fresh = log("fresh.log", now.minus(Duration.ofDays(13)));
        Path live = log("live.log", now.minus(Duration.ofDays(30)));
        Path liveRotated = log("live.log.1", now.minus(Duration.ofDays(30)));
        Path notALog = log("notes.txt", now.minus(Duration.ofDays(30)));

        int deleted = LogPruner.prune(logs, Set.of("live"), now);

        assertThat(stale).doesNotExist();
        assertThat(staleShim).doesNotExist();
        assertThat(live).exists();
        assertThat(liveRotated).exists();
        assertThat(notALog).exists();
        // 211 candidates younger than 14 days (t0..t209, fresh): fresh is the oldest of them, and 11 go.
        assertThat(fresh).doesNotExist();
        assertThat(logs.resolve("t199.log")).exists();
        assertThat(logs.resolve("t200.log")).doesNotExist();
        assertThat(logs.resolve("t209.log")).doesNotExist();
        assertThat(deleted).isEqualTo(2 + 11);
        try (var files = Files.list(logs)) {
            assertThat(files.count()).isEqualTo(200 + 3);
        }
        assertThat(LogPruner.prune(logs.resolve("missing"), Set.of(), now)).isZero();
    }
}
