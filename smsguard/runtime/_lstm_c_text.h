/* The text side of _lstm_c.c for ASCII text, in plain C (no Python API; _lstm_c.c wraps it): the join rule of
 * the normaliser (vocab.json format 2) and the Keras word tokenizer over a frozen word index. The Python in
 * _text.py and _vocabulary.py is the reference; tests/test_featurise.py holds this against it. Included once,
 * by _lstm_c.c, after <stdint.h>, <stdlib.h> and <string.h>. */

/* ---- the join rule: letters spaced or dotted apart ("F R E E" -> "FREE") -------------------------------- */

/* JoinRule.pattern() on ASCII text, `(?<!A)A(?:[SEP]{1,R}A){N-1,}(?!A)` with A = [A-Za-z0-9], is a scan:
 * the regex sees only three kinds of character (a letter or digit, a separator, anything else), since
 * separators are never letters (the caller checks), so from a letter that follows no letter there is one
 * way on: each next letter must come after a run of 1..R separators, which is the maximal run (a longer
 * run can only be cut before a separator, and a separator is no letter). The chain L0, L1, ..., Lm is
 * fixed; greedy `{N-1,}` then backs off letter by letter until `(?!A)` holds, which it does after every
 * Lk with k < m (a separator follows) and after Lm unless a letter follows it directly ("F R EE"). */
typedef struct {
    unsigned char separator[256];  /* 1 for the ASCII separators */
    int min_letters;               /* N */
    int max_run;                   /* R */
} Join;

static inline int is_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* The letter after the separators that follow position `after` (a letter), or -1: the next link of a chain. */
static Py_ssize_t next_link(const Join *join, const unsigned char *text, Py_ssize_t size, Py_ssize_t after) {
    Py_ssize_t at = after + 1;
    int run = 0;
    while (at < size && join->separator[text[at]] && run <= join->max_run) {
        at++;
        run++;
    }
    return run >= 1 && run <= join->max_run && at < size && is_alnum(text[at]) ? at : -1;
}

/* Where a match starting at `start` (a letter that follows no letter) ends, one past its last letter, or -1. */
static Py_ssize_t match_end(const Join *join, const unsigned char *text, Py_ssize_t size, Py_ssize_t start) {
    Py_ssize_t last = start, before_last = -1, next;
    int letters = 1;
    while ((next = next_link(join, text, size, last)) >= 0) {
        before_last = last;
        last = next;
        letters++;
    }
    if (last + 1 >= size || !is_alnum(text[last + 1]))
        return letters >= join->min_letters ? last + 1 : -1;
    return letters - 1 >= join->min_letters ? before_last + 1 : -1;  /* "F R E EE": back off the last link */
}

/* The first match at or after `from`, as [*start, return value), or -1 for none. */
static Py_ssize_t find_match(const Join *join, const unsigned char *text, Py_ssize_t size, Py_ssize_t from, Py_ssize_t *start) {
    for (Py_ssize_t at = from; at < size; at++) {
        if (!is_alnum(text[at]) || (at > 0 && is_alnum(text[at - 1])))
            continue;
        const Py_ssize_t end = match_end(join, text, size, at);
        if (end >= 0) {
            *start = at;
            return end;
        }
    }
    return -1;
}

/* `text` with every match replaced by its letters: `text` itself when nothing matches (most messages), else
 * written to `out` (room for `size` bytes: joining only removes). *joined is the length of what it returns. */
static const unsigned char *join_text(const Join *join, const unsigned char *text, Py_ssize_t size, unsigned char *out, Py_ssize_t *joined) {
    Py_ssize_t start, end = find_match(join, text, size, 0, &start), read = 0, written = 0;
    if (end < 0) {
        *joined = size;
        return text;
    }
    for (; end >= 0; end = find_match(join, text, size, end, &start)) {
        memcpy(out + written, text + read, (size_t)(start - read));
        written += start - read;
        for (Py_ssize_t at = start; at < end; at++)
            if (is_alnum(text[at]))
                out[written++] = text[at];
        read = end;
    }
    memcpy(out + written, text + read, (size_t)(size - read));
    *joined = written + size - read;
    return out;
}

/* ---- the word tokenizer ------------------------------------------------------------------------------- */

/* The frozen word index for ASCII words: open addressing (a power of two of slots, at least twice the words),
 * each slot a word's hash, its place in `keys` and the id it becomes (num_words and the OOV token already
 * applied by Vocabulary: what `_ascii_lookup` holds). */
typedef struct {
    uint32_t hash, offset, length;
    int32_t id;  /* 0: an empty slot (ids are >= 1) */
} Slot;

typedef struct {
    unsigned char table[256];  /* lowercase (when the tokenizer lowers), then filters -> split: `_ascii_table` */
    unsigned char split;
    int32_t oov;               /* the id of a word not in the index, or 0: dropped */
    int maxlen, pad_front, keep_first;
    Slot *slots;
    uint32_t mask;
    char *keys;
} Words;

static inline uint32_t word_hash(const unsigned char *word, Py_ssize_t length) {
    uint32_t hash = 2166136261u;  /* FNV-1a: words are a few bytes; a longer hash would cost more than it saves */
    for (Py_ssize_t i = 0; i < length; i++)
        hash = (hash ^ word[i]) * 16777619u;
    return hash;
}

static inline int32_t word_id(const Words *words, const unsigned char *word, Py_ssize_t length) {
    const uint32_t hash = word_hash(word, length);
    for (uint32_t at = hash & words->mask;; at = (at + 1) & words->mask) {
        const Slot *slot = &words->slots[at];
        if (!slot->id)
            return words->oov;
        if (slot->hash == hash && slot->length == length && !memcmp(words->keys + slot->offset, word, (size_t)length))
            return slot->id;
    }
}

/* Adds a word (a new one: the index's keys are distinct) whose bytes are at keys + offset. */
static void words_add(Words *words, uint32_t offset, uint32_t length, int32_t id) {
    const unsigned char *word = (const unsigned char *)words->keys + offset;
    const uint32_t hash = word_hash(word, length);
    uint32_t at = hash & words->mask;
    while (words->slots[at].id)
        at = (at + 1) & words->mask;
    words->slots[at] = (Slot){hash, offset, length, id};
}

/* The ids a row keeps, as they come: the first maxlen (truncating "post"), or the last maxlen in a ring. */
typedef struct {
    int32_t *ids;  /* maxlen */
    Py_ssize_t count;
    int maxlen, keep_first;
} Kept;

static inline int kept_add(Kept *kept, int32_t id) {
    if (kept->keep_first) {
        kept->ids[kept->count++] = id;
        return kept->count == kept->maxlen;  /* full: the rest of the text cannot change the row */
    }
    kept->ids[kept->count++ % kept->maxlen] = id;
    return 0;
}

/* The word ids of an ASCII text into row[0..maxlen), padded with zeros at the configured end: each byte
 * through the table, words split at `split`, empty words dropped, then looked up. `word` has room for the
 * text; `ring` for maxlen ids. */
static void word_row(const Words *words, const unsigned char *text, Py_ssize_t size, unsigned char *word, int32_t *ring, int32_t *row) {
    Kept kept = {ring, 0, words->maxlen, words->keep_first};
    Py_ssize_t length = 0;
    for (Py_ssize_t at = 0; at <= size; at++) {
        const unsigned char c = at < size ? words->table[text[at]] : words->split;
        if (c != words->split) {
            word[length++] = c;
            continue;
        }
        const int32_t id = length ? word_id(words, word, length) : 0;
        length = 0;
        if (id && kept_add(&kept, id))
            break;
    }
    const int maxlen = words->maxlen;
    const int count = kept.count < maxlen ? (int)kept.count : maxlen;
    const int first = kept.keep_first || kept.count <= maxlen ? 0 : (int)(kept.count % maxlen);  /* the oldest in the ring */
    int32_t *out = row + (words->pad_front ? maxlen - count : 0);
    memset(row, 0, (size_t)maxlen * sizeof(int32_t));
    for (int i = 0; i < count; i++)
        out[i] = ring[(first + i) % maxlen];
}
