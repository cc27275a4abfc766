package dev.smsguard;

import java.io.File;

/**
 * Raw text in, spam probability and label out: a bundle's encoding and one of its {@code .npz} models, run in
 * plain Java (no native code, no dependency). Immutable and safe to share between threads: load one at start-up
 * (off the main thread on Android: loading reads and hashes a few MB) and call it from any thread.
 *
 * <pre>{@code
 * Classifier classifier = Classifier.load(new File("bundle"));
 * Prediction p = classifier.classify("WINNER!! Claim your prize now");
 * if (p.isSpam()) { ... }
 * }</pre>
 */
public final class Classifier {
    private final Bundle bundle;
    private final String model;
    private final LstmModel lstm;
    private final float threshold;
    private final PersonalLayer personal; // null: no personal state, or one this bundle does not take
    private final String personalNote;

    private Classifier(Bundle bundle, String model, LstmModel lstm, double threshold, PersonalLayer personal, String personalNote) {
        this.bundle = bundle;
        this.model = model;
        this.lstm = lstm;
        // NumPy compares a float32 probability with a Python float in float32: so does this.
        this.threshold = (float) threshold;
        this.personal = personal;
        this.personalNote = personalNote;
    }

    /** The recommended {@code .npz} model of the bundle in {@code folder}. */
    public static Classifier load(File folder) throws BundleException {
        return load(BundleSource.folder(folder), null);
    }

    /** {@code model} (a file name such as "model.float32.npz"; null: the recommended one) of the bundle in {@code folder}. */
    public static Classifier load(File folder, String model) throws BundleException {
        return load(BundleSource.folder(folder), model);
    }

    /**
     * {@code model} of the bundle read through {@code source}.
     *
     * @param model an {@code .npz} file of the bundle; null for the manifest's recommended one
     * @throws IntegrityException when a file does not match the SHA-256 its manifest pins
     * @throws BundleException when a file is missing, malformed or of a format this library does not read
     */
    public static Classifier load(BundleSource source, String model) throws BundleException {
        return of(Bundle.load(source), model);
    }

    /** {@code model} (null: the recommended one) of an already loaded bundle. */
    public static Classifier of(Bundle bundle, String model) throws BundleException {
        String name = model != null ? model : bundle.recommendedModel();
        if (name == null) {
            throw new BundleException("bundle '" + bundle.where() + "' recommends no .npz model; name one of: " + bundle.npzModels() + bundle.manifest().packHint());
        }
        if (!bundle.hasFile(name)) {
            Manifest.LeftOut left = bundle.manifest().leftOutModel(name);
            if (left != null) {
                throw new BundleException("bundle '" + bundle.where() + "' is packed for " + bundle.manifest().packTarget + " and does not hold model '" + name
                        + "' of its full bundle; " + left.where());
            }
            throw new BundleException("bundle '" + bundle.where() + "' has no model '" + name + "'; its .npz models: " + Bundle.join(bundle.npzModels()));
        }
        Manifest.Entry entry = bundle.entry(name);
        if (!"model".equals(entry.kind) || !"npz".equals(entry.format)) {
            String what = "model".equals(entry.kind) ? "a " + entry.format + " model" : "a " + entry.kind + " file";
            throw new BundleException("bundle file '" + bundle.locate(name) + "' is " + what + ": this library runs the .npz models (" + bundle.npzModels()
                    + "); feed a .tflite model to LiteRT's Interpreter with Encoder.encode");
        }
        LstmModel lstm = new LstmModel(bundle.verified(name), bundle.locate(name));
        Encoder encoder = bundle.encoder();
        if (lstm.maxlen != encoder.maxlen() || lstm.ngramLength != encoder.ngramLength()) {
            throw new BundleException("model '" + bundle.locate(name) + "' takes " + lstm.maxlen + " word ids and " + lstm.ngramLength
                    + " n-gram ids, but the vocabulary writes " + encoder.maxlen() + " and " + encoder.ngramLength() + "; re-export the bundle");
        }
        if (encoder.maxWordId() >= lstm.rows || encoder.maxNgramId() >= lstm.ngramIds() && lstm.ngramLength > 0) {
            throw new BundleException("model '" + bundle.locate(name) + "' has " + lstm.rows + " word ids and " + lstm.ngramIds()
                    + " n-gram ids, fewer than the vocabulary gives; re-export the bundle");
        }
        return new Classifier(bundle, name, lstm, bundle.threshold(name), null, "");
    }

    /**
     * This classifier with a user's corrections applied to every probability (docs/reference/personal-state.md):
     * {@code state} as {@link PersonalState#read} gives it, null for none. A state made for another n-gram bag is
     * not applied, and one whose weights were not fitted for this bundle's vocabulary gets its near-duplicate step
     * alone (this library never fits): {@link #personalNote()} then says so in one line.
     */
    public Classifier withPersonal(PersonalState state) throws BundleException {
        String[] note = new String[1];
        PersonalLayer layer = PersonalLayer.of(state, bundle, bundle.threshold(model), note);
        return new Classifier(bundle, model, lstm, bundle.threshold(model), layer, note[0]);
    }

    /** Why the personal state is not applied, or only in part ("" when it is wholly, or there is none). */
    public String personalNote() {
        return personalNote;
    }

    /** The probability and label of {@code text}. */
    public Prediction classify(String text) {
        return predictionOf(probability(text));
    }

    /** The spam probability of {@code text} (the probability of the positive label), the personal state applied. */
    public float probability(String text) {
        return score(encoder().encode(text));
    }

    /**
     * The probability of one row of model input, as {@link #encode} gives it (the personal state applied).
     *
     * @throws IllegalArgumentException when the row is not {@link Encoder#width()} ids within the model's ranges
     */
    public float probability(int[] row) {
        if (row == null) {
            throw new NullPointerException("row must not be null: pass the ids Encoder.encode gives");
        }
        checkRow(row);
        return score(row);
    }

    private float score(int[] row) {
        float probability = lstm.probability(row);
        return personal == null ? probability : personal.apply(probability, row, lstm.maxlen);
    }

    /** The model's probability of {@code row} before the personal state (as {@link #probability(int[])} without it). */
    public float modelProbability(int[] row) {
        if (row == null) {
            throw new NullPointerException("row must not be null: pass the ids Encoder.encode gives");
        }
        checkRow(row);
        return lstm.probability(row);
    }

    /** The label at this model's threshold for a probability. */
    public Prediction predictionOf(float probability) {
        boolean spam = probability >= threshold;
        return new Prediction(probability, spam ? bundle.positiveLabel() : bundle.negativeLabel(), spam);
    }

    /** The model input of {@code text}: word ids, then n-gram ids ({@link Encoder#encode}). */
    public int[] encode(String text) {
        return encoder().encode(text);
    }

    /** The bundle's encoding. */
    public Encoder encoder() {
        return bundle.encoder();
    }

    /** The bundle this classifier runs. */
    public Bundle bundle() {
        return bundle;
    }

    /** The model file it runs. */
    public String model() {
        return model;
    }

    /** The threshold it labels at: the model's own when the manifest gives one, else the bundle's (as float). */
    public float threshold() {
        return threshold;
    }

    private void checkRow(int[] row) {
        if (row.length != lstm.width()) {
            throw new IllegalArgumentException("expected a row of " + lstm.width() + " ids (" + lstm.maxlen + " word ids, then " + lstm.ngramLength
                    + " n-gram ids), found " + row.length);
        }
        for (int j = 0; j < row.length; j++) {
            int limit = j < lstm.maxlen ? lstm.rows : lstm.ngramIds();
            if (row[j] < 0 || row[j] >= limit) {
                String what = j < lstm.maxlen ? "word id" : "n-gram id";
                throw new IllegalArgumentException(what + " " + row[j] + " at column " + j + " is outside the model's ids 0.." + (limit - 1));
            }
        }
    }
}
