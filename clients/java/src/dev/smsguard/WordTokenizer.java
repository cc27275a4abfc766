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
    private final Map<String, Integer> ids; // a word -> its id in a sequence (the OOV id past num_words)
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
        ids = new HashMap<String, Integer>(wordIndex.map().size() * 2);
        int largest = oovId;
        for (String word : wordIndex.map().keySet()) {
            int id = wordIndex.integer(word, 1, Integer.MAX_VALUE);
            if (numWords == 0 || id < numWords) {
                ids.put(word, id);
                largest = Math.max(largest, id);
            } else if (oov != null) {
                ids.put(word, oov);
            }
        }
        maxId = largest;
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

    void lookUp(String word, boolean matchable, Ints found) {
        Integer id = matchable ? ids.get(word) : null;
        if (id != null) {
            found.add(id);
        } else if (oovId != 0) {
            found.add(oovId);
        }
    }

    /** The word being read, as a String to look up. */
    private static final class Word {
        private final StringBuilder chars = new StringBuilder();
        private int last = -1;
        // Two lone surrogates side by side (a high, then a low) are two code points in Python but one pair in
        // a Java String: such a word matches no key of Python's word_index (its JSON reader joins such pairs).
        private boolean matchable = true;

        void add(int cp) {
            if (last >= 0xD800 && last <= 0xDBFF && cp >= 0xDC00 && cp <= 0xDFFF) {
                matchable = false;
            }
            chars.appendCodePoint(cp);
            last = cp;
        }

        void end(WordTokenizer tokenizer, Ints found) {
            if (chars.length() > 0) {
                tokenizer.lookUp(chars.toString(), matchable, found);
                chars.setLength(0);
            }
            last = -1;
            matchable = true;
        }
    }
}
