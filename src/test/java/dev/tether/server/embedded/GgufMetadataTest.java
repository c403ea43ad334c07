package dev.tether.server.embedded;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufMetadataTest {

    @Test
    void readsWhatTinyDeclares(@TempDir Path dir) throws Exception {
        GgufMetadata tiny = GgufMetadata.read(TinyModel.ensure(dir));
        assertThat(tiny.architecture()).isEqualTo("llama");
        assertThat(tiny.vocabularySize()).isEqualTo(256 + TinyModel.MERGES.length + 3);
        assertThat(tiny.values().get("llama.context_length")).isEqualTo((long) TinyModel.CONTEXT);
        assertThat(tiny.values().get("tokenizer.chat_template")).isEqualTo(TinyModel.CHAT_TEMPLATE);
        assertThat(tiny.poolingType()).as("tiny is no embedding model").isZero();
    }

    @Test
    void aFileCutShortOrNotGgufIsAnIoErrorNotACrash(@TempDir Path dir) throws Exception {
        byte[] tiny = Files.readAllBytes(TinyModel.ensure(dir));
        Path cut = Files.write(dir.resolve("cut.gguf"), Arrays.copyOf(tiny, 2000));
        assertThatThrownBy(() -> GgufMetadata.read(cut)).isInstanceOf(IOException.class).hasMessageContaining("cut short");
        Path other = Files.writeString(dir.resolve("other.gguf"), "not a model");
        assertThatThrownBy(() -> GgufMetadata.read(other)).isInstanceOf(IOException.class).hasMessageContaining("not a GGUF");
    }
}
