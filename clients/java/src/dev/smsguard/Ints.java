package dev.smsguard;

import java.util.Arrays;

/** A growable int array: a text's code points, or a message's ids, without boxing. */
final class Ints {
    int[] data;
    int size;

    Ints(int capacity) {
        data = new int[Math.max(capacity, 4)];
    }

    void add(int value) {
        if (size == data.length) {
            data = Arrays.copyOf(data, size * 2);
        }
        data[size++] = value;
    }

    void addAll(int[] values) {
        if (size + values.length > data.length) {
            data = Arrays.copyOf(data, Math.max(size * 2, size + values.length));
        }
        System.arraycopy(values, 0, data, size, values.length);
        size += values.length;
    }

    void clear() {
        size = 0;
    }

    /** The code points of {@code text}: a valid surrogate pair is one, an unpaired surrogate is itself. */
    static Ints codePoints(String text) {
        Ints out = new Ints(text.length());
        for (int i = 0; i < text.length(); ) {
            int cp = text.codePointAt(i);
            out.data[out.size++] = cp; // never more code points than chars
            i += Character.charCount(cp);
        }
        return out;
    }
}
