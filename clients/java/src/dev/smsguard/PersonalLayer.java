package dev.smsguard;

import java.util.Arrays;

/**
 * A personal state applied to one model's probabilities: the four steps of docs/reference/personal-state.md, in
 * float64 as the Python runtime computes them, with {@code StrictMath} (the same results on every JVM); a message
 * neither step moves keeps the model's probability bit for bit.
 */
final class PersonalLayer {
    private final PersonalState state;
    private final boolean[] spam; // per correction: its label is the bundle's positive one
    private final int[] weightIds; // null: the near-duplicate step alone
    private final float[] weightValues;
    private final double thresholdLogit;

    private PersonalLayer(PersonalState state, String positive, boolean weights, double threshold) {
        this.state = state;
        spam = new boolean[state.size()];
        for (int i = 0; i < spam.length; i++) {
            spam[i] = positive.equals(state.labels[i]);
        }
        weightIds = weights ? state.weightIds : null;
        weightValues = weights ? state.weightValues : null;
        double t = Math.min(Math.max(threshold, 1e-7), 1 - 1e-7);
        thresholdLogit = StrictMath.log(t) - StrictMath.log1p(-t);
    }

    /** The layer of {@code state} for {@code bundle} at {@code threshold}, or null; {@code note[0]}: "" or why it is not (wholly) applied. */
    static PersonalLayer of(PersonalState state, Bundle bundle, double threshold, String[] note) throws BundleException {
        note[0] = "";
        if (state == null || state.size() == 0) {
            return null;
        }
        String file = "personal state '" + state.where + "' (" + state.size() + " corrections)";
        Encoder encoder = bundle.encoder();
        if (encoder.ngramLength() == 0) {
            note[0] = file + " is not applied: this runtime applies a state to a fused bundle (word and n-gram model), and '" + bundle.where()
                    + "' is a word model alone; apply it with the Python runtime";
            return null;
        }
        String bag = PersonalState.describe(encoder.buckets(), encoder.minN(), encoder.maxN(), encoder.ngramLength(), encoder.textSha256());
        if (!bag.equals(state.describeBag()) || !encoder.textSha256().equals(state.textSha256) || encoder.lowerNgrams() != state.lower) {
            note[0] = file + " was made for another n-gram bag (" + state.describeBag() + ") than this bundle's (" + bag
                    + "): it is not applied; the next report sets it aside as personal.set-aside-<time>.json and starts a new one";
            return null;
        }
        boolean fitted = state.weightIds != null && state.fittedFor.equals(state.fitDigest(bundle.vocabularySha256()));
        if (!fitted) {
            note[0] = file + " has no weights fitted for this bundle's vocabulary, and this runtime does not fit: only its near-duplicate step is applied; "
                    + "load it once with the Python runtime (`smsguard predict --bundle BUNDLE --personal DIR TEXT`) to fit them";
        }
        return new PersonalLayer(state, bundle.positiveLabel(), fitted, threshold);
    }

    /** The probability of a message after the layer: {@code probability} (the model's) and the message's model input {@code row}. */
    float apply(float probability, int[] row, int maxlen) {
        int[] bag = bagOf(row, maxlen);
        double p = Math.min(Math.max((double) probability, 1e-7), 1 - 1e-7);
        double shift = shift(bag);
        double z = StrictMath.log(p) - StrictMath.log1p(-p) + shift;
        boolean moved = shift != 0;
        int closest = -1;
        double best = -1;
        for (int i = 0; i < spam.length; i++) {
            double similarity = jaccard(bag, state.bags[i]);
            if (similarity >= best) { // the latest of equals
                best = similarity;
                closest = i;
            }
        }
        if (closest >= 0 && best >= state.near) {
            z = spam[closest] ? Math.max(z, thresholdLogit + state.nearMargin) : Math.min(z, thresholdLogit - state.nearMargin);
            moved = true;
        }
        return moved ? (float) (1.0 / (1.0 + StrictMath.exp(-z))) : probability;
    }

    /** Step 2: the weights of the bag's ids added in id order, times 1 / sqrt(|B|), after the dead zone. */
    private double shift(int[] bag) {
        if (weightIds == null) {
            return 0;
        }
        double sum = 0;
        for (int id : bag) {
            int at = Arrays.binarySearch(weightIds, id);
            if (at >= 0) {
                sum += (double) weightValues[at];
            }
        }
        double raw = sum * (1.0 / Math.sqrt(Math.max(bag.length, 1)));
        double low = state.deadZone + state.anchorMargin;
        return raw > state.deadZone ? raw - state.deadZone : raw < -low ? raw + low : 0.0;
    }

    private static double jaccard(int[] a, int[] b) {
        int common = 0;
        for (int i = 0, j = 0; i < a.length && j < b.length; ) {
            if (a[i] == b[j]) {
                common++;
                i++;
                j++;
            } else if (a[i] < b[j]) {
                i++;
            } else {
                j++;
            }
        }
        return common == 0 ? 0.0 : (double) common / (double) (a.length + b.length - common);
    }

    /** The message's distinct n-gram ids, sorted (zeros, the padding, left out). */
    private static int[] bagOf(int[] row, int maxlen) {
        int[] ids = Arrays.copyOfRange(row, maxlen, row.length);
        Arrays.sort(ids);
        int n = 0;
        for (int id : ids) {
            if (id > 0 && (n == 0 || ids[n - 1] != id)) {
                ids[n++] = id;
            }
        }
        return Arrays.copyOf(ids, n);
    }
}
