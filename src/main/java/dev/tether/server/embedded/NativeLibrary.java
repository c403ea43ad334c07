package dev.tether.server.embedded;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Puts the binding's native library where several engines can load it at once.
 *
 * <p>de.kherud:llama 4.2.0 extracts {@code libjllama.so} into {@code java.io.tmpdir} under a fixed
 * name, overwriting it, and before its first extraction deletes every {@code jllama*}/{@code llama*}
 * file there: two engines starting together can load a half-written library, and a third can delete
 * one from under them. So tether extracts it once into {@code $TETHER_HOME/native/<sha-256>/}
 * (content-addressed, written to a temporary file and renamed, never overwritten) and points the
 * binding at that directory with {@code de.kherud.llama.lib.path}; {@code de.kherud.llama.tmpdir}
 * points there too, so the binding's clean-up only ever looks at that directory.
 */
final class NativeLibrary {
    private NativeLibrary() {}

    /** Extracts if needed and sets the binding's system properties; call before touching LlamaModel. */
    static Path prepare(Path nativeRoot) throws IOException {
        String resource = "/de/kherud/llama/" + osFolder() + "/" + System.mapLibraryName("jllama");
        byte[] library;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("the llama.cpp binding has no native library for this platform (" + resource + ")");
            }
            library = in.readAllBytes();
        }
        Path dir = nativeRoot.resolve(sha256(library).substring(0, 16));
        Path file = dir.resolve(System.mapLibraryName("jllama"));
        if (!Files.isRegularFile(file) || Files.size(file) != library.length) {
            Files.createDirectories(dir);
            Path temp = Files.createTempFile(dir, ".extract-", ".tmp");
            try {
                Files.write(temp, library);
                Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(temp);
            }
        }
        System.setProperty("de.kherud.llama.lib.path", dir.toString());
        System.setProperty("de.kherud.llama.tmpdir", dir.toString());
        return file;
    }

    private static String osFolder() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        String archFolder = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> arch;
        };
        if (os.contains("linux")) {
            return "Linux/" + archFolder;
        }
        if (os.contains("mac")) {
            return "Mac/" + archFolder;
        }
        return "Windows/" + archFolder;
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
