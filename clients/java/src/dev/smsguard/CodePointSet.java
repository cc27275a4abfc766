package dev.smsguard;

import java.util.Arrays;

/** A small set of code points given as a string (filters, whitespace, separators). */
final class CodePointSet {
    private final boolean[] ascii = new boolean[128];
    private final int[] others; // sorted

    private CodePointSet(int[] cps) {
        int[] rest = new int[cps.length];
        int n = 0;
        for (int cp : cps) {
            if (cp < 128) {
                ascii[cp] = true;
            } else {
                rest[n++] = cp;
            }
        }
        others = Arrays.copyOf(rest, n);
        Arrays.sort(others);
    }

    /** The code points of {@code chars} (a surrogate pair is one; a lone surrogate is itself). */
    static CodePointSet of(String chars) {
        Ints cps = Ints.codePoints(chars);
        return new CodePointSet(Arrays.copyOf(cps.data, cps.size));
    }

    boolean contains(int cp) {
        return cp < 128 ? ascii[cp] : others.length > 0 && Arrays.binarySearch(others, cp) >= 0;
    }
}
