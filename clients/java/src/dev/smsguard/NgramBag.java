package dev.smsguard;

import java.util.List;

/**
 * The hashed character n-grams of a text ("the bag", {@code vocab["ngrams"]}): for each whitespace-separated
 * word of the lowercased text, wrapped in {@code <} and {@code >}, every gram of {@code min_n..max_n} code points
 * in order (word, start, n) becomes {@code crc32(utf8 surrogatepass) % buckets + 1}; the first {@code length}
 * distinct ids are kept. Reading stops as soon as {@code length} ids are kept.
 */
final class NgramBag {
    /** The code points Python's {@code str.split()} splits on: the spec's WHITESPACE. */
    static final String WHITESPACE = "\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
            + "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
    private static final int FORMAT = 1;
    private static final int[] CRC_TABLE = crcTable();

    final Lowercase lowercase; // null: no lowercasing
    private final CodePointSet whitespace = CodePointSet.of(WHITESPACE);
    final long buckets;
    final int minN;
    final int maxN;
    final int length;
    private final Bucketing bucketing;

    private NgramBag(JsonObject ngrams, Lowercase table) throws BundleException {
        if (ngrams.integer("format") != FORMAT) {
            throw ngrams.malformed("n-gram bag format " + ngrams.integer("format") + " is not supported by this runtime (it reads format " + FORMAT + ")");
        }
        checkConstant(ngrams, "hash", "crc32");
        checkConstant(ngrams, "encoding", "utf-8");
        checkConstant(ngrams, "encoding_errors", "surrogatepass");
        checkConstant(ngrams, "order", "word, start, n");
        checkConstant(ngrams, "whitespace", WHITESPACE);
        List<Object> wrap = ngrams.list("wrap");
        if (wrap.size() != 2 || !"<".equals(wrap.get(0)) || !">".equals(wrap.get(1))) {
            throw ngrams.malformed("field 'ngrams.wrap' must be [\"<\", \">\"]");
        }
        buckets = ngrams.integer("buckets", 1, Integer.MAX_VALUE - 1);
        minN = ngrams.integer("min_n", 1, 16);
        maxN = ngrams.integer("max_n", minN, 16);
        length = ngrams.integer("length", 1, 1 << 20);
        lowercase = ngrams.bool("lower") ? table : null;
        bucketing = new Bucketing(buckets);
    }

    static NgramBag read(JsonObject ngrams, Lowercase table) throws BundleException {
        return new NgramBag(ngrams, table);
    }

    private static void checkConstant(JsonObject ngrams, String key, String expected) throws BundleException {
        String found = ngrams.string(key);
        if (!found.equals(expected)) {
            throw ngrams.malformed("field 'ngrams." + key + "' is " + Json.quote(found) + ", this runtime computes " + Json.quote(expected));
        }
    }

    /** Writes the bag of {@code text} into {@code row[offset..offset+length)}, which holds zeros. */
    void encode(Ints text, int[] row, int offset) {
        Sink sink = new Sink(row, offset, length, buckets);
        Ints word = new Ints(64);
        word.add('<');
        int[] t = text.data;
        int n = text.size;
        for (int i = 0; i < n && !sink.full(); i++) {
            int[] lower = lowercase == null ? null : lowercase.of(t, n, i);
            if (lower == null) {
                take(t[i], word, sink);
            } else {
                for (int cp : lower) {
                    take(cp, word, sink);
                }
            }
        }
        hashWord(word, sink);
    }

    private void take(int cp, Ints word, Sink sink) {
        if (whitespace.contains(cp)) {
            hashWord(word, sink);
        } else {
            word.add(cp);
        }
    }

    /** The grams of the word in {@code word[1..)} (word[0] is '<'), then the buffer is reset to '<'. */
    private void hashWord(Ints word, Sink sink) {
        if (word.size == 1) {
            return;
        }
        word.add('>');
        int[] w = word.data;
        int size = word.size;
        for (int start = 0; start < size && !sink.full(); start++) {
            int crc = 0xFFFFFFFF;
            int end = Math.min(size, start + maxN);
            for (int j = start; j < end; j++) {
                crc = update(crc, w[j]);
                if (j - start + 1 >= minN) {
                    sink.keep(bucketing.of(~crc) + 1);
                }
            }
        }
        word.size = 1;
    }

    /** The CRC-32 register after the UTF-8 bytes of {@code cp} (a surrogate as its 3 bytes, as surrogatepass). */
    private static int update(int crc, int cp) {
        if (cp < 0x80) {
            return step(crc, cp);
        }
        if (cp < 0x800) {
            return step(step(crc, 0xC0 | cp >> 6), 0x80 | (cp & 0x3F));
        }
        if (cp < 0x10000) {
            return step(step(step(crc, 0xE0 | cp >> 12), 0x80 | (cp >> 6 & 0x3F)), 0x80 | (cp & 0x3F));
        }
        return step(step(step(step(crc, 0xF0 | cp >> 18), 0x80 | (cp >> 12 & 0x3F)), 0x80 | (cp >> 6 & 0x3F)), 0x80 | (cp & 0x3F));
    }

    private static int step(int crc, int octet) {
        return CRC_TABLE[(crc ^ octet) & 0xFF] ^ (crc >>> 8);
    }

    /** zlib's CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): java.util.zip.CRC32 one byte at a time. */
    private static int[] crcTable() {
        int[] table = new int[256];
        for (int i = 0; i < 256; i++) {
            int c = i;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
            }
            table[i] = c;
        }
        return table;
    }

    /**
     * crc % buckets for crc read as unsigned 32 bits, without a 64-bit division per gram (it was most of the bag's
     * time): a mask when buckets is a power of two, else the quotient from a double reciprocal (off by at most one,
     * since crc < 2^32) corrected exactly in long arithmetic.
     */
    static final class Bucketing {
        private final long buckets;
        private final int mask; // buckets - 1 when buckets is a power of two, else -1
        private final double reciprocal;

        Bucketing(long buckets) {
            this.buckets = buckets;
            mask = Long.bitCount(buckets) == 1 ? (int) buckets - 1 : -1;
            reciprocal = 1.0 / buckets;
        }

        int of(int crc) {
            if (mask >= 0) {
                return crc & mask;
            }
            long x = crc & 0xFFFFFFFFL;
            long r = x - (long) (x * reciprocal) * buckets;
            if (r < 0) {
                r += buckets;
            } else if (r >= buckets) {
                r -= buckets;
            }
            return (int) r;
        }
    }

    /** The ids kept so far: each the first time it is seen, at most {@code length}. */
    private static final class Sink {
        private static final int BITMAP_BUCKETS = 1 << 16; // up to here a bitmap of the ids seen (8 KB at most), past it a hash set
        private final int[] row;
        private final int offset;
        private final int limit;
        private final long[] bits; // the ids seen, one bit each; null: the hash set below
        private final int[] seen; // open addressing; 0 is empty (ids are >= 1)
        private final int mask;
        private int count;

        Sink(int[] row, int offset, int limit, long buckets) {
            this.row = row;
            this.offset = offset;
            this.limit = limit;
            if (buckets < BITMAP_BUCKETS) {
                bits = new long[(int) (buckets + 1 + 63) >>> 6];
                seen = null;
                mask = 0;
            } else {
                bits = null;
                int capacity = Integer.highestOneBit(Math.max(limit, 8) * 2) * 2;
                seen = new int[capacity];
                mask = capacity - 1;
            }
        }

        boolean full() {
            return count == limit;
        }

        void keep(int id) {
            if (count == limit) {
                return;
            }
            if (bits != null) {
                long bit = 1L << id;
                if ((bits[id >>> 6] & bit) != 0) {
                    return;
                }
                bits[id >>> 6] |= bit;
                row[offset + count++] = id;
                return;
            }
            int slot = (id * 0x9E3779B9) >>> 7 & mask;
            while (seen[slot] != 0) {
                if (seen[slot] == id) {
                    return;
                }
                slot = (slot + 1) & mask;
            }
            seen[slot] = id;
            row[offset + count++] = id;
        }
    }
}
