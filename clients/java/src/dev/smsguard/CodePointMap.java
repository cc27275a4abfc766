package dev.smsguard;

import java.util.Arrays;
import java.util.Map;

/**
 * A table from code points to replacement code points, read from a bundle: keys are code points in lowercase
 * hex without prefix, values strings (possibly several code points, possibly none). ASCII is looked up
 * directly, everything else by binary search: the tables are frozen in the bundle, never the platform's.
 */
final class CodePointMap {
    private final int[][] ascii = new int[128][];
    private final int[] keys;
    private final int[][] values;

    private CodePointMap(int[] keys, int[][] values) {
        this.keys = keys;
        this.values = values;
        for (int i = 0; i < keys.length && keys[i] < 128; i++) {
            ascii[keys[i]] = values[i];
        }
    }

    static CodePointMap read(JsonObject parent, String key) throws BundleException {
        JsonObject table = parent.object(key);
        Map<String, Object> entries = table.map();
        long[] order = new long[entries.size()]; // code point << 32 | position in the file, sorted by code point
        String[] strings = new String[entries.size()];
        int n = 0;
        for (Map.Entry<String, Object> entry : entries.entrySet()) {
            if (!(entry.getValue() instanceof String)) {
                throw table.malformed("'" + key + "' maps " + entry.getKey() + " to " + JsonObject.describe(entry.getValue()) + ", expected a string");
            }
            order[n] = (long) parseKey(table, key, entry.getKey()) << 32 | n;
            strings[n++] = (String) entry.getValue();
        }
        Arrays.sort(order);
        int[] keys = new int[n];
        int[][] values = new int[n][];
        for (int i = 0; i < n; i++) {
            keys[i] = (int) (order[i] >>> 32);
            if (i > 0 && keys[i] == keys[i - 1]) {
                throw table.malformed("'" + key + "' has code point " + Integer.toHexString(keys[i]) + " twice");
            }
            Ints cps = Ints.codePoints(strings[(int) order[i]]);
            values[i] = Arrays.copyOf(cps.data, cps.size);
        }
        return new CodePointMap(keys, values);
    }

    private static int parseKey(JsonObject table, String key, String hex) throws BundleException {
        try {
            int cp = Integer.parseInt(hex, 16);
            if (cp >= 0 && cp <= Character.MAX_CODE_POINT && !hex.startsWith("+") && !hex.startsWith("-")) {
                return cp;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw table.malformed("'" + key + "' has key " + Json.quote(hex) + ", expected a code point in hex");
    }

    /** The replacement of {@code cp}, or null when the table leaves it as it is. */
    int[] get(int cp) {
        if (cp < 128) {
            return ascii[cp];
        }
        int i = Arrays.binarySearch(keys, cp);
        return i >= 0 ? values[i] : null;
    }

    boolean isEmpty() {
        return keys.length == 0;
    }
}
