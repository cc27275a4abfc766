package dev.smsguard;

import java.util.Arrays;
import java.util.List;

/** A set of code points as inclusive [first, last] ranges read from a bundle, looked up by binary search. */
final class CodePointRanges {
    private final int[] firsts;
    private final int[] lasts;
    private final boolean[] ascii = new boolean[128];

    private CodePointRanges(int[] firsts, int[] lasts) {
        this.firsts = firsts;
        this.lasts = lasts;
        for (int cp = 0; cp < 128; cp++) {
            ascii[cp] = search(cp);
        }
    }

    static CodePointRanges read(JsonObject parent, String key) throws BundleException {
        List<Object> pairs = parent.list(key);
        long[] packed = new long[pairs.size()];
        for (int i = 0; i < packed.length; i++) {
            Object pair = pairs.get(i);
            if (!(pair instanceof List) || ((List<?>) pair).size() != 2 || !isCodePoint(((List<?>) pair).get(0)) || !isCodePoint(((List<?>) pair).get(1))) {
                throw parent.malformed("'" + key + "' item " + i + " is " + JsonObject.describe(pair) + ", expected [first, last] code points");
            }
            long first = (Long) ((List<?>) pair).get(0);
            long last = (Long) ((List<?>) pair).get(1);
            if (last < first) {
                throw parent.malformed("'" + key + "' item " + i + " is [" + first + ", " + last + "], expected first <= last");
            }
            packed[i] = first << 32 | last;
        }
        Arrays.sort(packed);
        int[] firsts = new int[packed.length];
        int[] lasts = new int[packed.length];
        int n = 0;
        for (long range : packed) { // merged, so the search below sees disjoint sorted ranges
            int first = (int) (range >>> 32);
            int last = (int) range;
            if (n > 0 && first <= lasts[n - 1] + 1) {
                lasts[n - 1] = Math.max(lasts[n - 1], last);
            } else {
                firsts[n] = first;
                lasts[n++] = last;
            }
        }
        return new CodePointRanges(Arrays.copyOf(firsts, n), Arrays.copyOf(lasts, n));
    }

    private static boolean isCodePoint(Object value) {
        return value instanceof Long && (Long) value >= 0 && (Long) value <= Character.MAX_CODE_POINT;
    }

    boolean contains(int cp) {
        return cp < 128 ? ascii[cp] : search(cp);
    }

    private boolean search(int cp) {
        int i = Arrays.binarySearch(firsts, cp);
        if (i >= 0) {
            return true;
        }
        int before = -i - 2; // the last range starting below cp
        return before >= 0 && cp <= lasts[before];
    }
}
