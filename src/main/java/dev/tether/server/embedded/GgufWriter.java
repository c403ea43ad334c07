package dev.tether.server.embedded;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a GGUF (version 3) file: header, metadata key/values, tensor infos, aligned tensor data.
 * Only what the tiny model needs: scalar, string and array metadata, and F32 tensors. Written by
 * hand because no Java library on Maven Central writes GGUF (readers exist; llama.cpp's own writer
 * is Python), and the format is a few dozen lines.
 */
final class GgufWriter {
    private static final int ALIGNMENT = 32;
    private static final int TYPE_UINT32 = 4;
    private static final int TYPE_INT32 = 5;
    private static final int TYPE_FLOAT32 = 6;
    private static final int TYPE_BOOL = 7;
    private static final int TYPE_STRING = 8;
    private static final int TYPE_ARRAY = 9;
    private static final int GGML_TYPE_F32 = 0;

    private final Map<String, Object> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();

    /** @param dims GGML order: dims[0] is the fastest-varying (a row's length) */
    private record Tensor(String name, long[] dims, float[] data) {}

    GgufWriter put(String key, Object value) {
        metadata.put(key, value);
        return this;
    }

    GgufWriter tensor(String name, float[] data, long... dims) {
        long count = 1;
        for (long d : dims) {
            count *= d;
        }
        if (count != data.length) {
            throw new IllegalArgumentException(name + ": " + data.length + " values for dims " + java.util.Arrays.toString(dims));
        }
        tensors.add(new Tensor(name, dims, data));
        return this;
    }

    byte[] toBytes() {
        Out out = new Out();
        out.raw("GGUF".getBytes(StandardCharsets.US_ASCII));
        out.u32(3);
        out.u64(tensors.size());
        out.u64(metadata.size());
        metadata.forEach((key, value) -> {
            out.string(key);
            value(out, value);
        });
        long offset = 0;
        for (Tensor t : tensors) {
            out.string(t.name);
            out.u32(t.dims.length);
            for (long d : t.dims) {
                out.u64(d);
            }
            out.u32(GGML_TYPE_F32);
            out.u64(offset);
            offset = align(offset + 4L * t.data.length);
        }
        out.pad();
        for (Tensor t : tensors) {
            ByteBuffer buffer = ByteBuffer.allocate(4 * t.data.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float f : t.data) {
                buffer.putFloat(f);
            }
            out.raw(buffer.array());
            out.pad();
        }
        return out.bytes.toByteArray();
    }

    private static long align(long n) {
        return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    private static void value(Out out, Object value) {
        switch (value) {
            case String s -> {
                out.u32(TYPE_STRING);
                out.string(s);
            }
            case Integer i -> {
                out.u32(TYPE_UINT32);
                out.u32(i);
            }
            case Float f -> {
                out.u32(TYPE_FLOAT32);
                out.f32(f);
            }
            case Boolean b -> {
                out.u32(TYPE_BOOL);
                out.raw(new byte[] {(byte) (b ? 1 : 0)});
            }
            case String[] strings -> {
                out.u32(TYPE_ARRAY);
                out.u32(TYPE_STRING);
                out.u64(strings.length);
                for (String s : strings) {
                    out.string(s);
                }
            }
            case int[] ints -> {
                out.u32(TYPE_ARRAY);
                out.u32(TYPE_INT32);
                out.u64(ints.length);
                for (int i : ints) {
                    out.u32(i);
                }
            }
            default -> throw new IllegalArgumentException("unsupported metadata value " + value.getClass());
        }
    }

    /** Little-endian output with GGUF's string form (u64 length + UTF-8 bytes). */
    private static final class Out {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void raw(byte[] b) {
            bytes.writeBytes(b);
        }

        void u32(int v) {
            scratch.clear();
            scratch.putInt(v);
            bytes.write(scratch.array(), 0, 4);
        }

        void f32(float v) {
            scratch.clear();
            scratch.putFloat(v);
            bytes.write(scratch.array(), 0, 4);
        }

        void u64(long v) {
            scratch.clear();
            scratch.putLong(v);
            bytes.write(scratch.array(), 0, 8);
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            u64(b.length);
            raw(b);
        }

        void pad() {
            while (bytes.size() % ALIGNMENT != 0) {
                bytes.write(0);
            }
        }
    }
}
