package dev.tether.server.embedded;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The metadata of a GGUF file (its key/value section, not its tensors): scalars by key, and for an
 * array its length (the key with {@code .length} appended). The engine asks it what llama.cpp's binding
 * does not tell: the vocabulary size (token ids a client may send) and whether the model is an
 * embedding model (it declares a pooling type).
 */
record GgufMetadata(Map<String, Object> values) {
    /** The GGUF value types (gguf.h). */
    private static final int UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
            STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12;

    static GgufMetadata read(Path file) throws IOException {
        try (InputStream raw = Files.newInputStream(file);
             DataInputStream in = new DataInputStream(new BufferedInputStream(raw, 1 << 16))) {
            byte[] magic = in.readNBytes(4);
            if (!new String(magic, StandardCharsets.ISO_8859_1).equals("GGUF")) {
                throw new IOException(file + " is not a GGUF file");
            }
            int version = u32(in);
            if (version < 2) {
                throw new IOException(file + ": GGUF version " + version + " is too old (2 or later is read)");
            }
            u64(in);   // tensor count
            long count = u64(in);
            Map<String, Object> values = new HashMap<>();
            for (long i = 0; i < count; i++) {
                String key = string(in);
                int type = u32(in);
                if (type == ARRAY) {
                    int elementType = u32(in);
                    long length = u64(in);
                    values.put(key + ".length", length);
                    for (long j = 0; j < length; j++) {
                        value(in, elementType);
                    }
                } else {
                    values.put(key, value(in, type));
                }
            }
            return new GgufMetadata(values);
        } catch (EOFException e) {
            throw new IOException(file + ": the GGUF metadata is cut short");
        }
    }

    String architecture() {
        return String.valueOf(values.getOrDefault("general.architecture", ""));
    }

    /** Tokens in the vocabulary, or -1 if the file does not list them. */
    long vocabularySize() {
        Object n = values.get("tokenizer.ggml.tokens.length");
        return n instanceof Long l ? l : -1;
    }

    /** The pooling type an embedding model declares ({@code <arch>.pooling_type}: 1 mean, 2 cls, 3 last, ...), else 0. */
    int poolingType() {
        Object p = values.get(architecture() + ".pooling_type");
        return p instanceof Number n ? n.intValue() : 0;
    }

    private static Object value(DataInputStream in, int type) throws IOException {
        return switch (type) {
            case UINT8, INT8 -> (long) in.readByte();
            case UINT16, INT16 -> (long) Short.reverseBytes(in.readShort());
            case UINT32 -> Integer.toUnsignedLong(u32(in));
            case INT32 -> (long) u32(in);
            case FLOAT32 -> Float.intBitsToFloat(u32(in));
            case BOOL -> in.readByte() != 0;
            case STRING -> string(in);
            case UINT64, INT64 -> u64(in);
            case FLOAT64 -> Double.longBitsToDouble(u64(in));
            default -> throw new IOException("unknown GGUF value type " + type);
        };
    }

    private static int u32(DataInputStream in) throws IOException {
        return Integer.reverseBytes(in.readInt());
    }

    private static long u64(DataInputStream in) throws IOException {
        return Long.reverseBytes(in.readLong());
    }

    private static String string(DataInputStream in) throws IOException {
        long length = u64(in);
        if (length < 0 || length > 1 << 24) {
            throw new IOException("a GGUF string of " + length + " bytes: the file is damaged");
        }
        return new String(in.readNBytes((int) length), StandardCharsets.UTF_8);
    }
}
