package dev.tether.pipeline;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.function.Function;

/**
 * Where each key is in an input: the 64-bit hash of each line's key next to its line number, in two arrays sorted by
 * hash (16 bytes a line, whatever the size of the records). Finds a line by key (to put an output in input order) and
 * two lines with the same key (an input error: keys key the resume).
 */
final class InputLines {
    private long[] hashes = new long[1024];
    private long[] lines = new long[1024];
    private int size;

    /** @param key a line's key, or null for a line that has none */
    static InputLines of(Path input, Function<Jsonl.Line, String> key) {
        InputLines l = new InputLines();
        for (Jsonl.Line line : Jsonl.read(input)) {
            String k = key.apply(line);
            if (k != null) {
                if (l.size == l.hashes.length) {
                    l.hashes = Arrays.copyOf(l.hashes, l.size * 2);
                    l.lines = Arrays.copyOf(l.lines, l.size * 2);
                }
                l.hashes[l.size] = DoneKeys.hash(k);
                l.lines[l.size++] = line.number();
            }
        }
        l.sort(0, l.size - 1);
        return l;
    }

    /** The line of key (the first, if two lines have it); Long.MAX_VALUE when none has it. */
    long lineOf(String key) {
        int i = Arrays.binarySearch(hashes, 0, size, DoneKeys.hash(key));
        if (i < 0) {
            return Long.MAX_VALUE;
        }
        while (i > 0 && hashes[i - 1] == hashes[i]) {
            i--;
        }
        return lines[i];
    }

    /** Two lines with the same key, as {first, second} line numbers (the earliest such second line); null when none. */
    long[] duplicate() {
        long[] found = null;
        for (int i = 1; i < size; i++) {
            if (hashes[i] == hashes[i - 1]) {
                int j = i - 1;
                while (j > 0 && hashes[j - 1] == hashes[i]) {
                    j--;
                }
                long first = Long.MAX_VALUE;
                long second = Long.MAX_VALUE;
                for (int k = j; k < size && hashes[k] == hashes[i]; k++) {
                    if (lines[k] < first) {
                        second = first;
                        first = lines[k];
                    } else if (lines[k] < second) {
                        second = lines[k];
                    }
                }
                if (found == null || second < found[1]) {
                    found = new long[] {first, second};
                }
            }
        }
        return found;
    }

    /** Quicksort of both arrays by hash. */
    private void sort(int lo, int hi) {
        while (lo < hi) {
            long pivot = hashes[(lo + hi) >>> 1];
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (hashes[i] < pivot) {
                    i++;
                }
                while (hashes[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    long h = hashes[i];
                    hashes[i] = hashes[j];
                    hashes[j] = h;
                    long n = lines[i];
                    lines[i] = lines[j];
                    lines[j] = n;
                    i++;
                    j--;
                }
            }
            if (j - lo < hi - i) {
                sort(lo, j);
                lo = i;
            } else {
                sort(i, hi);
                hi = j;
            }
        }
    }
}
