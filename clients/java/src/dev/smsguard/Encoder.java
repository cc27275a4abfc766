package dev.smsguard;

/**
 * A bundle's input encoding ({@code vocab.json}, format 2): text in, one row of model input out, exactly as
 * smsguard's Python {@code Vocabulary.encode} computes it. The row is {@link #width()} ints: the word ids
 * ({@link #maxlen()}, padded), then a fused model's n-gram ids ({@link #ngramLength()}, 0-padded at the end).
 * It is the input of every model of the bundle, the {@code .tflite} ones included (for LiteRT's
 * {@code Interpreter}: one int32 tensor of shape [1, width]).
 *
 * <p>Immutable: share one between threads. A message of any length costs time linear in its length.
 */
public final class Encoder {
    static final int VOCAB_FORMAT = 2;
    private static final int TEXT_FORMAT = 1;

    private final Normaliser normaliser; // null: the bundle does not normalise
    private final WordTokenizer words;
    private final NgramBag ngrams; // null: a word model alone
    private final String textSha256; // of the text section as Python dumps it: names the tables a personal state was made with

    private Encoder(Normaliser normaliser, WordTokenizer words, NgramBag ngrams, String textSha256) {
        this.normaliser = normaliser;
        this.words = words;
        this.ngrams = ngrams;
        this.textSha256 = textSha256;
    }

    /** Reads {@code vocab.json}'s content; {@code where} names the file in errors. */
    static Encoder read(byte[] bytes, String where) throws BundleException {
        JsonObject vocab = JsonObject.read(bytes, "vocabulary '" + where + "'");
        long format = vocab.integer("format");
        if (format == 1) {
            throw new BundleException("'" + where + "': vocabulary format 1 is not supported by this runtime: re-export the bundle with smsguard >= 0.2");
        }
        if (format != VOCAB_FORMAT) {
            throw new BundleException("'" + where + "': vocabulary format " + format + " is not supported by this runtime (it reads format "
                    + VOCAB_FORMAT + "): use the smsguard client library released with the smsguard that exported the bundle");
        }
        JsonObject text = vocab.object("text");
        if (text.integer("format") != TEXT_FORMAT) {
            throw text.malformed("text format " + text.integer("format") + " is not supported by this runtime (it reads format " + TEXT_FORMAT + ")");
        }
        Lowercase lowercase = Lowercase.read(text.object("lowercase"));
        Normaliser normaliser = Normaliser.read(text, CodePointSet.of(NgramBag.WHITESPACE));
        NgramBag ngrams = vocab.isNull("ngrams") ? null : NgramBag.read(vocab.object("ngrams"), lowercase);
        String textSha256 = Bundle.sha256(PythonJson.dumps(text.map()).getBytes(java.nio.charset.Charset.forName("UTF-8")));
        return new Encoder(normaliser, WordTokenizer.read(vocab, lowercase), ngrams, textSha256);
    }

    /** The model input of {@code text}: {@link #width()} ints (word ids, then n-gram ids). */
    public int[] encode(String text) {
        if (text == null) {
            throw new NullPointerException("text must not be null: pass the message's text");
        }
        int[] row = new int[width()];
        Ints cps = Ints.codePoints(text);
        Ints normalised = normaliser == null ? cps : normaliser.apply(cps);
        words.encode(normalised, row);
        if (ngrams != null) {
            ngrams.encode(normalised, row, words.maxlen);
        }
        return row;
    }

    /** The largest word id a row can hold. */
    int maxWordId() {
        return words.maxId;
    }

    /** The largest n-gram id a row can hold (0 for a word model). */
    long maxNgramId() {
        return ngrams == null ? 0 : ngrams.buckets;
    }

    /** Columns of a row: {@code maxlen + ngramLength}. */
    public int width() {
        return words.maxlen + ngramLength();
    }

    /** Word ids per row (the model's {@code maxlen}). */
    public int maxlen() {
        return words.maxlen;
    }

    /** N-gram ids per row after the word ids; 0 for a word model alone. */
    public int ngramLength() {
        return ngrams == null ? 0 : ngrams.length;
    }

    /** The bag's buckets, n-gram sizes, lowercasing and text spec (0, false: a word model alone): what a personal state must match. */
    long buckets() {
        return ngrams == null ? 0 : ngrams.buckets;
    }

    int minN() {
        return ngrams == null ? 0 : ngrams.minN;
    }

    int maxN() {
        return ngrams == null ? 0 : ngrams.maxN;
    }

    boolean lowerNgrams() {
        return ngrams != null && ngrams.lowercase != null;
    }

    String textSha256() {
        return textSha256;
    }
}
