package dev.tether.server.embedded;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TinyModelTest {

    @Test
    void theFileIsSmallDeterministicAndAGguf(@TempDir Path a, @TempDir Path b) throws Exception {
        Path first = TinyModel.ensure(a);
        Path second = TinyModel.ensure(b);
        byte[] bytes = Files.readAllBytes(first);
        assertThat(new String(bytes, 0, 4, java.nio.charset.StandardCharsets.US_ASCII)).isEqualTo("GGUF");
        assertThat(bytes.length).isBetween(100_000, 1_000_000);
        assertThat(sha(Files.readAllBytes(second))).isEqualTo(sha(bytes));
        assertThat(TinyModel.ensure(a)).isEqualTo(first);   // generated once, then reused
    }

    @Test
    void byteTokensFollowGpt2sByteLevelMapping() {
        assertThat(TinyModel.byteToken('a')).isEqualTo("a");
        assertThat(TinyModel.byteToken(' ')).isEqualTo("Ġ");
        assertThat(TinyModel.byteToken('\n')).isEqualTo("Ċ");
    }

    private static String sha(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }
}
