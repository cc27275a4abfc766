package dev.smsguard;

/**
 * The bundle's text normalisation ({@code vocab["text"]["normalise"]}), four steps in the spec's order:
 * remove invisible code points, fold compatibility forms, map look-alike letters inside Latin words, and
 * join letters spaced or dotted apart ({@code "F R E E"} becomes {@code "FREE"}). Linear in the text.
 */
final class Normaliser {
    private final CodePointRanges remove;
    private final CodePointMap fold;
    private final CodePointMap lookalikes;
    private final CodePointSet whitespace;
    private final CodePointSet separators;
    private final int minLetters;
    private final int maxSeparatorRun;
    private final boolean asciiKept; // no ASCII code point is removed, folded or replaced: ASCII text skips steps 1-3

    private Normaliser(JsonObject normalise, CodePointSet whitespace) throws BundleException {
        remove = CodePointRanges.read(normalise, "remove");
        fold = CodePointMap.read(normalise, "fold");
        lookalikes = CodePointMap.read(normalise, "lookalikes");
        JsonObject join = normalise.object("join");
        minLetters = join.integer("min_letters", 1, Integer.MAX_VALUE);
        maxSeparatorRun = join.integer("max_separator_run", 1, Integer.MAX_VALUE);
        separators = CodePointSet.of(join.string("separators"));
        this.whitespace = whitespace;
        boolean kept = true;
        for (int cp = 0; cp < 128; cp++) {
            kept &= !remove.contains(cp) && fold.get(cp) == null && lookalikes.get(cp) == null;
        }
        asciiKept = kept;
    }

    /** The normaliser of a {@code text} section, or null when its {@code normalise} is null. */
    static Normaliser read(JsonObject text, CodePointSet whitespace) throws BundleException {
        return text.isNull("normalise") ? null : new Normaliser(text.object("normalise"), whitespace);
    }

    /** {@code text} normalised (a new buffer; the argument is not changed). */
    Ints apply(Ints text) {
        Ints folded = asciiKept && isAscii(text) ? text : lookalikes(removeAndFold(text));
        return join(folded);
    }

    private static boolean isAscii(Ints text) {
        for (int i = 0; i < text.size; i++) {
            if (text.data[i] >= 128) {
                return false;
            }
        }
        return true;
    }

    private Ints removeAndFold(Ints text) {
        Ints out = new Ints(text.size);
        for (int i = 0; i < text.size; i++) {
            int cp = text.data[i];
            if (remove.contains(cp)) {
                continue;
            }
            int[] folded = fold.get(cp);
            if (folded == null) {
                out.add(cp);
            } else {
                out.addAll(folded);
            }
        }
        return out;
    }

    /** Step 3: in each whitespace-separated word with an ASCII letter, look-alike letters become Latin. */
    private Ints lookalikes(Ints text) {
        if (lookalikes.isEmpty()) {
            return text;
        }
        Ints out = new Ints(text.size);
        int start = 0;
        while (start < text.size) {
            int end = start;
            boolean latin = false;
            while (end < text.size && !whitespace.contains(text.data[end])) {
                latin |= isAsciiLetter(text.data[end]);
                end++;
            }
            for (int i = start; i < end; i++) {
                int[] latinForm = latin ? lookalikes.get(text.data[i]) : null;
                if (latinForm == null) {
                    out.add(text.data[i]);
                } else {
                    out.addAll(latinForm);
                }
            }
            if (end < text.size) {
                out.add(text.data[end]); // the whitespace after the word
            }
            start = end + 1;
        }
        return out;
    }

    /**
     * Step 4, the spec's {@code (?<![A-Za-z0-9])[A-Za-z0-9](?:[SEP]{1,R}[A-Za-z0-9]){N-1,}(?![A-Za-z0-9])} with
     * Python's leftmost-greedy semantics, each match replaced by its letters and digits; written out rather than
     * as a regular expression, because java.util.regex recurses once per repetition and a long run would
     * overflow the stack. A separator run longer than R ends a match, and when the letter after the last
     * group is followed by another letter or digit, the greedy match gives that last group back.
     */
    private Ints join(Ints text) {
        int[] t = text.data;
        int n = text.size;
        Ints out = null;
        int copied = 0;
        int p = 0;
        while (p < n) {
            if (!isAlnum(t[p]) || (p > 0 && isAlnum(t[p - 1]))) {
                p++;
                continue;
            }
            int end = p + 1;
            int before = end; // the end with one group fewer
            int groups = 0;
            while (true) {
                int run = 0;
                while (end + run < n && run <= maxSeparatorRun && separators.contains(t[end + run])) {
                    run++;
                }
                if (run == 0 || run > maxSeparatorRun || end + run >= n || !isAlnum(t[end + run])) {
                    break;
                }
                before = end;
                end += run + 1;
                groups++;
            }
            if (end < n && isAlnum(t[end])) { // the look-ahead fails: give the last group back
                groups--;
                end = before;
            }
            if (groups < minLetters - 1 || groups < 0) {
                p++;
                continue;
            }
            if (out == null) {
                out = new Ints(n);
            }
            for (int i = copied; i < p; i++) {
                out.add(t[i]);
            }
            for (int i = p; i < end; i++) {
                if (isAlnum(t[i])) {
                    out.add(t[i]);
                }
            }
            copied = end;
            p = end;
        }
        if (out == null) {
            return text;
        }
        for (int i = copied; i < n; i++) {
            out.add(t[i]);
        }
        return out;
    }

    private static boolean isAlnum(int cp) {
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9');
    }

    private static boolean isAsciiLetter(int cp) {
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    }
}
