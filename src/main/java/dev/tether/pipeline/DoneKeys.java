package dev.tether.pipeline;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The keys of finished records, kept small: each key is a 64-bit hash in a sorted array, so a
 * million finished records cost 8 MB, not a set of strings. (Two keys colliding in 64 bits is
 * vanishingly unlikely for the sizes tether handles; the cost would be one item skipped.)
 */
public final class DoneKeys {
    private long[] hashes = new long[16];
    private int size;
    private boolean sorted = true;

    public synchronized void add(String key) {
        if (size == hashes.length) {
            hashes = Arrays.copyOf(hashes, size * 2);
        }
        hashes[size++] = hash(key);
        sorted = false;
    }

    synchronized void addAll(DoneKeys other) {
        for (int i = 0; i < other.size; i++) {
            if (size == hashes.length) {
                hashes = Arrays.copyOf(hashes, size * 2);
            }
            hashes[size++] = other.hashes[i];
        }
        sorted = false;
    }

    public synchronized boolean contains(String key) {
        if (!sorted) {
            Arrays.sort(hashes, 0, size);
            sorted = true;
        }
        return Arrays.binarySearch(hashes, 0, size, hash(key)) >= 0;
    }

    public synchronized int size() {
        return size;
    }

    /** FNV-1a, 64-bit. */
    static long hash(String key) {
        long h = 0xcbf29ce484222325L;
        for (byte b : key.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }
}
