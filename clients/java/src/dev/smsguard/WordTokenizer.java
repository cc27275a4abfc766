package dev.smsguard;

import java.util.HashMap;
import java.util.Map;

/**
 * The word ids of a text: Keras' {@code Tokenizer} and {@code pad_sequences} as {@code vocab.json} freezes them
 * (lowercase by the bundle's table, filters become the split string, split, look up with {@code num_words} and
 * the OOV token, truncate, pad). With a one-character split (every bundle so far) the text is read once and
 * reading stops as soon as {@code maxlen} ids are kept from the front.
 */
final class WordTokenizer {
    private final Lowercase lowercase; // null: no lowercasing
    private final CodePointSet filters;
    private final int[] split;
    private final Index ids; // a word's code points -> its id in a sequence (the OOV id past num_words)
    private final int oovId; // 0: unknown words are dropped
    final int maxlen;
    final int maxId; // the largest id a sequence can hold
    private final boolean keepFirst; // truncating "post"
    private final boolean padFront; // padding "pre"

    private WordTokenizer(JsonObject vocab, Lowercase table) throws BundleException {
        JsonObject tokenizer = vocab.object("tokenizer");
        JsonObject sequence = vocab.object("sequence");
        lowercase = tokenizer.bool("lower") ? table : null;
        filters = CodePointSet.of(tokenizer.string("filters"));
        String splitText = tokenizer.string("split");
        if (splitText.isEmpty()) {
            throw tokenizer.malformed("field 'tokenizer.split' must be a non-empty string");
        }
        Ints splitCps = Ints.codePoints(splitText);
        split = java.util.Arrays.copyOf(splitCps.data, splitCps.size);
        long numWords = tokenizer.isNull("num_words") ? 0 : tokenizer.integer("num_words", 2, Integer.MAX_VALUE);
        String oovToken = tokenizer.stringOrNull("oov_token");
        maxlen = sequence.integer("maxlen", 1, 1 << 20);
        keepFirst = side(sequence, "truncating");
        padFront = !side(sequence, "padding");
        if (!sequence.has("value") || sequence.integer("value") != 0) {
            throw sequence.malformed("field 'sequence.value' must be 0");
        }
        JsonObject wordIndex = vocab.object("word_index");
        Integer oov = null;
        if (oovToken != null && wordIndex.has(oovToken)) {
            oov = wordIndex.integer(oovToken, 1, Integer.MAX_VALUE);
        }
        oovId = oov == null ? 0 : oov;
        Map<String, Integer> byWord = new HashMap<String, Integer>(wordIndex.map().size() * 2);
        int largest = oovId;
        for (String word : wordIndex.map().keySet()) {
            int id = wordIndex.integer(word, 1, Integer.MAX_VALUE);
            if (numWords == 0 || id < numWords) {
                byWord.put(word, id);
                largest = Math.max(largest, id);
            } else if (oov != null) {
                byWord.put(word, oov);
            }
        }
        maxId = largest;
        ids = new Index(byWord);
    }

    static WordTokenizer read(JsonObject vocab, Lowercase table) throws BundleException {
        return new WordTokenizer(vocab, table);
    }

    /** True for "post", false for "pre". */
    private static boolean side(JsonObject sequence, String key) throws BundleException {
        String value = sequence.string(key);
        if (!value.equals("pre") && !value.equals("post")) {
            throw sequence.malformed("field 'sequence." + key + "' must be \"pre\" or \"post\", found " + Json.quote(value));
        }
        return value.equals("post");
    }

    /** Writes the padded word ids of {@code text} into {@code row[0..maxlen)}, which holds zeros. */
    void encode(Ints text, int[] row) {
        Ints found = new Ints(maxlen + 1);
        if (split.length == 1) {
            readOnce(text, found);
        } else {
            readSplitString(text, found);
        }
        int count = Math.min(found.size, maxlen);
        int from = keepFirst ? 0 : found.size - count;
        System.arraycopy(found.data, from, row, padFront ? maxlen - count : 0, count);
    }

    private void readOnce(Ints text, Ints found) {
        Word word = new Word();
        int[] t = text.data;
        int n = text.size;
        for (int i = 0; i < n && !(keepFirst && found.size >= maxlen); i++) {
            int[] lower = lowercase == null ? null : lowercase.of(t, n, i);
            if (lower == null) {
                take(t[i], word, found);
            } else {
                for (int cp : lower) {
                    take(cp, word, found);
                }
            }
        }
        word.end(this, found);
    }

    private void take(int cp, Word word, Ints found) {
        if (cp == split[0] || filters.contains(cp)) {
            word.end(this, found);
        } else {
            word.add(cp);
        }
    }

    /** A split of several characters: lowercase, filters become the split string, then str.split(split). */
    private void readSplitString(Ints text, Ints found) {
        Ints lowered = lowercase == null ? text : lowercase.apply(text.data, text.size);
        Ints translated = new Ints(lowered.size);
        for (int i = 0; i < lowered.size; i++) {
            if (filters.contains(lowered.data[i])) {
                translated.addAll(split);
            } else {
                translated.add(lowered.data[i]);
            }
        }
        Word word = new Word();
        int[] t = translated.data;
        for (int i = 0; i < translated.size; ) {
            if (startsWith(t, translated.size, i, split)) {
                word.end(this, found);
                i += split.length;
            } else {
                word.add(t[i++]);
            }
        }
        word.end(this, found);
    }

    private static boolean startsWith(int[] t, int n, int at, int[] prefix) {
        if (at + prefix.length > n) {
            return false;
        }
        for (int j = 0; j < prefix.length; j++) {
            if (t[at + j] != prefix[j]) {
                return false;
            }
        }
        return true;
    }

    void lookUp(Word word, Ints found) {
        int id = word.matchable ? ids.get(word.cps, word.size, word.hash) : 0;
        if (id != 0) {
            found.add(id);
        } else if (oovId != 0) {
            found.add(oovId);
        }
    }

    /** The hash of a word's code points, as {@link Word} computes it while reading. */
    static int hash(int h, int cp) {
        return 31 * h + cp;
    }

    /**
     * The word index keyed by code points (open addressing), so that reading a word allocates nothing: a key is the
     * code points of its JSON string (a surrogate pair one, a lone surrogate itself), which is the word read from
     * a text whenever the word is matchable.
     */
    private static final class Index {
        private final int[][] keys;
        private final int[] values;
        private final int mask;

        Index(Map<String, Integer> byWord) {
            int capacity = Integer.highestOneBit(Math.max(byWord.size(), 4) * 2) * 2;
            keys = new int[capacity][];
            values = new int[capacity];
            mask = capacity - 1;
            for (Map.Entry<String, Integer> entry : byWord.entrySet()) {
                Ints cps = Ints.codePoints(entry.getKey());
                int h = 0;
                for (int i = 0; i < cps.size; i++) {
                    h = hash(h, cps.data[i]);
                }
                int slot = spread(h) & mask;
                while (keys[slot] != null) {
                    slot = (slot + 1) & mask;
                }
                keys[slot] = java.util.Arrays.copyOf(cps.data, cps.size);
                values[slot] = entry.getValue();
            }
        }

        private static int spread(int h) {
            return (h ^ (h >>> 16)) * 0x9E3779B9;
        }

        /** The id of the word cps[0..n), whose hash is h; 0 when it is not in the index. */
        int get(int[] cps, int n, int h) {
            int slot = spread(h) & mask;
            for (int[] key; (key = keys[slot]) != null; slot = (slot + 1) & mask) {
                if (key.length == n && same(key, cps, n)) {
                    return values[slot];
                }
            }
            return 0;
        }

        private static boolean same(int[] key, int[] cps, int n) {
            for (int i = 0; i < n; i++) {
                if (key[i] != cps[i]) {
                    return false;
                }
            }
            return true;
        }
    }

    /** The word being read: its code points and their hash. */
    private static final class Word {
        private int[] cps = new int[32];
        private int size;
        private int hash;
        private int last = -1;
        // Two lone surrogates side by side (a high, then a low) are two code points in Python but one pair in
        // a Java String: such a word matches no key of Python's word_index (its JSON reader joins such pairs).
        private boolean matchable = true;

        void add(int cp) {
            if (last >= 0xD800 && last <= 0xDBFF && cp >= 0xDC00 && cp <= 0xDFFF) {
                matchable = false;
            }
            if (size == cps.length) {
                cps = java.util.Arrays.copyOf(cps, size * 2);
            }
            cps[size++] = cp;
            hash = hash(hash, cp);
            last = cp;
        }

        void end(WordTokenizer tokenizer, Ints found) {
            if (size > 0) {
                tokenizer.lookUp(this, found);
                size = 0;
                hash = 0;
            }
            last = -1;
            matchable = true;
        }
    }
}
