package dev.smsguard;

/**
 * Lowercasing by the bundle's own table ({@code vocab["text"]["lowercase"]}), never the platform's Unicode
 * data, so every runtime gives the same ids: each code point becomes its {@code map} entry (or stays), and a
 * capital sigma becomes a final sigma exactly where CPython's {@code str.lower} puts one.
 */
final class Lowercase {
    private static final int CAPITAL_SIGMA = 0x3A3;
    private static final int[] FINAL_SIGMA = {0x3C2};
    private static final int[] SMALL_SIGMA = {0x3C3};

    private final CodePointMap map;
    private final CodePointRanges cased;
    private final CodePointRanges caseIgnorable;

    private Lowercase(CodePointMap map, CodePointRanges cased, CodePointRanges caseIgnorable) {
        this.map = map;
        this.cased = cased;
        this.caseIgnorable = caseIgnorable;
    }

    static Lowercase read(JsonObject lowercase) throws BundleException {
        JsonObject sigma = lowercase.object("final_sigma");
        return new Lowercase(CodePointMap.read(lowercase, "map"), CodePointRanges.read(sigma, "cased"), CodePointRanges.read(sigma, "case_ignorable"));
    }

    /** The lowercase of the code point at {@code i} of {@code text[0..length)}: its code points, or null when it is unchanged. */
    int[] of(int[] text, int length, int i) {
        int cp = text[i];
        if (cp == CAPITAL_SIGMA) {
            return finalSigma(text, length, i) ? FINAL_SIGMA : SMALL_SIGMA;
        }
        return map.get(cp);
    }

    /** CPython's Final_Sigma test: a cased letter before (skipping case-ignorable ones), and none after. */
    private boolean finalSigma(int[] text, int length, int i) {
        int j = i - 1;
        while (j >= 0 && caseIgnorable.contains(text[j])) {
            j--;
        }
        if (j < 0 || !cased.contains(text[j])) {
            return false;
        }
        j = i + 1;
        while (j < length && caseIgnorable.contains(text[j])) {
            j++;
        }
        return j == length || !cased.contains(text[j]);
    }

    /** The whole text lowercased (for the rare multi-character split; the tokenizers lowercase as they go). */
    Ints apply(int[] text, int length) {
        Ints out = new Ints(length);
        for (int i = 0; i < length; i++) {
            int[] lower = of(text, length, i);
            if (lower == null) {
                out.add(text[i]);
            } else {
                out.addAll(lower);
            }
        }
        return out;
    }
}
