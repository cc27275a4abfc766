package dev.smsguard;

import java.util.Map;

/**
 * A bundle's {@code .npz} model run in plain float arrays: the folded, pad-primed LSTM (see smsguard's
 * {@code _lstm.py}) and a fused model's n-gram branch. The arithmetic follows the native C kernel
 * ({@code _lstm_c_kernel.h}): one rational tanh for every gate (the i, f, o columns are halved at load, since
 * sigmoid(x) = 0.5 + 0.5 tanh(x / 2)), the recurrent product accumulated column by column in unit order, and
 * the n-gram sum in NumPy's pairwise order. Safe to share between threads: each call uses scratch arrays of its
 * own, and what it caches (an int8 row dequantised, whether a token's gates can reach the tanh clamp) every thread
 * computes alike, so a race only repeats the work.
 */
final class LstmModel {
    private static final int NPZ_FORMAT = 1;
    private static final int NPZ_COMPACT_FORMAT = 2; // the compact form: the int8 embedding and the input kernel, folded at load
    // The C kernel's rational tanh (Eigen's fast float tanh: an odd polynomial over an even one, clamped).
    private static final float TANH_CLAMP = 7.90531110763549805f;
    private static final float N0 = -2.76076847742355e-16f;
    private static final float N1 = 2.00018790482477e-13f;
    private static final float N2 = -8.60467152213735e-11f;
    private static final float N3 = 5.12229709037114e-08f;
    private static final float N4 = 1.48572235717979e-05f;
    private static final float N5 = 6.37261928875436e-04f;
    private static final float N6 = 4.89352455891786e-03f;
    private static final float D0 = 1.19825839466702e-06f;
    private static final float D1 = 1.18534705686654e-04f;
    private static final float D2 = 2.26843463243900e-03f;
    private static final float D3 = 4.89352518554385e-03f;

    final int maxlen;
    final int units;
    final int rows; // word ids are 0..rows-1
    final int ngramLength; // 0 for a word model alone
    // Matrices are arrays of rows: C2 vectorises a loop over row[j], not one over matrix[offset + j].
    private final float[][] table; // rows x 4u, halved; null when the table is int8 or compact
    private final CompactTable compact; // a compact model's table, its rows folded on first use; else null
    private final byte[][] tableQ; // rows x 4u int8, with tableScale per row
    private final float[] tableScale;
    // An int8 table's rows dequantised (q x scale x half) on first use, as a compact table folds its rows: the
    // cast from byte does not vectorise, and a message's words repeat; only the words a device sees cost memory.
    private final java.util.concurrent.atomic.AtomicReferenceArray<float[]> dequantised;
    private final float[] half; // 4u: 0.5 for the i, f, o columns, 1 for c
    private final float[][] recurrent; // u x 4u, halved
    private final float[] denseKernel;
    private final float denseBias;
    private final float[] primedH; // (maxlen + 1) x u
    private final float[] primedC;
    // Gates that cannot reach the tanh clamp skip it (Math.min/max halve the width C2 vectorises the tanh at):
    // |z[j]| <= |x[j]| + sum_k |R[k][j]| (reach[j]) since |h| <= 1 (tanh() never exceeds 1 in magnitude, checked
    // over every float, and neither does an output gate; the primed h is checked at load). A token whose row keeps
    // every column under the clamp by REACH_MARGIN (far more than the float sums' rounding) is calm.
    private static final double REACH_MARGIN = 1e-3;
    private final double[] reach;
    private final boolean primedBounded;
    private final double[] primedCellReach; // per start: max |primed c|; each step adds at most 1 (|f|, |i|, |g| <= 1)
    private final byte[] calm; // per token: 0 not yet known, CALM, or RESTLESS (benign races: every thread computes the same)
    private static final byte CALM = 1;
    private static final byte RESTLESS = 2;
    private final float[] ngramScores; // buckets + 1, [0] == 0; null for a word model
    private final float ngramBias;

    LstmModel(byte[] bytes, String where) throws BundleException {
        Map<String, Npz.Array> arrays = Npz.read(bytes, where);
        JsonObject meta = JsonObject.read(utf8(Npz.unicode(need(arrays, "meta", where), where)), "model '" + where + "' meta");
        long format = meta.integer("format");
        if (format != NPZ_FORMAT && format != NPZ_COMPACT_FORMAT || !"ifco".equals(meta.string("gates")) || !"tanh".equals(meta.string("activation"))) {
            throw new BundleException("model '" + where + "' is an LSTM weights file this runtime cannot run: " + meta.map());
        }
        maxlen = meta.integer("maxlen", 1, 1 << 20);
        ngramLength = meta.has("ngram_length") ? meta.integer("ngram_length", 1, 1 << 20) : 0;
        Npz.Array r = need(arrays, "recurrent", where);
        units = r.shape.length == 2 ? r.shape[0] : 0;
        int gates = 4 * units;
        half = new float[gates];
        for (int j = 0; j < gates; j++) {
            half[j] = j >= 2 * units && j < 3 * units ? 1.0f : 0.5f;
        }
        recurrent = halvedRows(matrix(r, gates, where), half);
        compact = format == NPZ_COMPACT_FORMAT ? CompactTable.read(arrays, half, where) : null;
        if (compact != null) {
            rows = compact.rows;
            table = null;
            tableQ = null;
            tableScale = null;
        } else if (arrays.containsKey("table")) {
            table = halvedRows(matrix(arrays.get("table"), gates, where), half);
            rows = table.length;
            tableQ = null;
            tableScale = null;
        } else {
            Npz.Array q = need(arrays, "table_q", where);
            byte[] flat = Npz.int8(q, where);
            rows = checkedRows(q, gates, where);
            tableQ = new byte[rows][];
            for (int i = 0; i < rows; i++) {
                tableQ[i] = java.util.Arrays.copyOfRange(flat, i * gates, (i + 1) * gates);
            }
            table = null;
            tableScale = Npz.floats(need(arrays, "table_scale", where), where);
        }
        dequantised = tableQ == null ? null : new java.util.concurrent.atomic.AtomicReferenceArray<float[]>(rows);
        denseKernel = Npz.floats(need(arrays, "dense_kernel", where), where);
        denseBias = Npz.floats(need(arrays, "dense_bias", where), where)[0];
        primedH = Npz.floats(need(arrays, "primed_h", where), where);
        primedC = Npz.floats(need(arrays, "primed_c", where), where);
        if (ngramLength > 0) {
            ngramScores = Npz.floats(need(arrays, "ngram_scores", where), where);
            ngramBias = Npz.floats(need(arrays, "ngram_bias", where), where)[0];
        } else {
            ngramScores = null;
            ngramBias = 0f;
        }
        checkShapes(where);
        reach = new double[gates];
        for (float[] row : recurrent) {
            for (int j = 0; j < gates; j++) {
                reach[j] += Math.abs((double) row[j]);
            }
        }
        boolean bounded = true;
        for (float value : primedH) {
            bounded &= Math.abs(value) <= 1f;
        }
        primedBounded = bounded;
        primedCellReach = new double[maxlen + 1];
        for (int i = 0; i < primedC.length; i++) {
            primedCellReach[i / units] = Math.max(primedCellReach[i / units], Math.abs((double) primedC[i]));
        }
        calm = new byte[rows];
    }

    private static byte[] utf8(String text) {
        return text.getBytes(java.nio.charset.Charset.forName("UTF-8"));
    }

    private static Npz.Array need(Map<String, Npz.Array> arrays, String name, String where) throws BundleException {
        Npz.Array array = arrays.get(name);
        if (array == null) {
            throw new BundleException("model '" + where + "' has no array '" + name + "'; re-export the bundle");
        }
        return array;
    }

    private static int checkedRows(Npz.Array array, int columns, String where) throws BundleException {
        if (array.shape.length != 2 || array.shape[1] != columns || columns == 0) {
            throw new BundleException("model '" + where + "' has array '" + array.name + "' of shape " + java.util.Arrays.toString(array.shape) + ", expected (n, "
                    + columns + ")");
        }
        return array.shape[0];
    }

    private static float[][] matrix(Npz.Array array, int columns, String where) throws BundleException {
        int n = checkedRows(array, columns, where);
        float[] flat = Npz.floats(array, where);
        float[][] out = new float[n][];
        for (int i = 0; i < n; i++) {
            out[i] = java.util.Arrays.copyOfRange(flat, i * columns, (i + 1) * columns);
        }
        return out;
    }

    private static float[][] halvedRows(float[][] matrix, float[] half) {
        for (float[] row : matrix) {
            for (int j = 0; j < row.length; j++) {
                row[j] *= half[j];
            }
        }
        return matrix;
    }

    private void checkShapes(String where) throws BundleException {
        boolean ok = units > 0
                && recurrent.length == units
                && rows > 0
                && (table != null || compact != null || tableScale.length == rows)
                && denseKernel.length == units
                && primedH.length == (maxlen + 1) * units
                && primedC.length == primedH.length
                && (ngramScores == null || (ngramScores.length > 0 && ngramScores[0] == 0f));
        if (!ok) {
            throw new BundleException("model '" + where + "' has inconsistent array shapes for an LSTM of " + units + " units and maxlen " + maxlen);
        }
    }

    /** Ids per row of input: the word ids, then a fused model's n-gram ids. */
    int width() {
        return maxlen + ngramLength;
    }

    int ngramIds() {
        return ngramScores == null ? 0 : ngramScores.length;
    }

    /** The spam probability of one row of input (checked by the caller: width and id ranges). */
    float probability(int[] row) {
        float word = wordProbability(row);
        return ngramScores == null ? word : fuse(row, word);
    }

    private float wordProbability(int[] ids) {
        final int u = units;
        float[] z = new float[4 * u];
        float[] h = new float[u];
        float[] c = new float[u];
        int length = 0;
        for (int t = 0; t < maxlen; t++) {
            length += ids[t] != 0 ? 1 : 0;
        }
        int start = maxlen - length;
        System.arraycopy(primedH, start * u, h, 0, u);
        System.arraycopy(primedC, start * u, c, 0, u);
        double cellReach = primedCellReach[start];
        for (int t = start; t < maxlen; t++) {
            float[] x = row(ids[t]);
            recurrent(x, z, h);
            cellReach = (cellReach + 1) * (1 + 1e-6); // the slack covers the rounding of f c + i g
            update(z, h, c, !isCalm(ids[t], x), cellReach > TANH_CLAMP - REACH_MARGIN);
        }
        float logit = denseBias;
        for (int j = 0; j < u; j++) {
            logit += h[j] * denseKernel[j];
        }
        return (float) (1.0 / (1.0 + Math.exp(-(double) logit)));
    }

    /** The token's row of the input table, halved (an int8 row: q x scale, then the gate halving, as the C kernel). */
    private float[] row(int token) {
        if (table != null) {
            return table[token];
        }
        if (compact != null) {
            return compact.row(token);
        }
        float[] row = dequantised.get(token);
        if (row == null) {
            final byte[] q = tableQ[token];
            final float scale = tableScale[token];
            row = new float[q.length];
            for (int j = 0; j < row.length; j++) {
                row[j] = ((float) q[j] * scale) * half[j];
            }
            dequantised.set(token, row);
        }
        return row;
    }

    /** Whether no gate of this token can reach the tanh clamp (see reach). */
    private boolean isCalm(int token, float[] x) {
        byte known = calm[token];
        if (known == 0) {
            boolean within = primedBounded;
            for (int j = 0; j < x.length && within; j++) {
                within = Math.abs((double) x[j]) + reach[j] <= TANH_CLAMP - REACH_MARGIN;
            }
            known = within ? CALM : RESTLESS;
            calm[token] = known;
        }
        return known == CALM;
    }

    /**
     * z := x + h @ recurrent: each z[j] is x[j], then h[k] * R[k][j] added for k = 0..u-1 in order, as in the C
     * kernel: the first pass adds four rows of R to x (so the row is never copied), the others five rows each (the
     * same sums, a fifth of the loads and stores of z; with six or more, C2 no longer vectorises the loop).
     */
    private void recurrent(float[] x, float[] z, float[] h) {
        final int gates = z.length;
        int k = 0;
        if (h.length >= 4) {
            final float h0 = h[0];
            final float h1 = h[1];
            final float h2 = h[2];
            final float h3 = h[3];
            final float[] r0 = recurrent[0];
            final float[] r1 = recurrent[1];
            final float[] r2 = recurrent[2];
            final float[] r3 = recurrent[3];
            for (int j = 0; j < gates; j++) {
                z[j] = (((x[j] + h0 * r0[j]) + h1 * r1[j]) + h2 * r2[j]) + h3 * r3[j];
            }
            k = 4;
        } else {
            System.arraycopy(x, 0, z, 0, gates);
        }
        for (; k + 4 < h.length; k += 5) {
            final float h0 = h[k];
            final float h1 = h[k + 1];
            final float h2 = h[k + 2];
            final float h3 = h[k + 3];
            final float h4 = h[k + 4];
            final float[] r0 = recurrent[k];
            final float[] r1 = recurrent[k + 1];
            final float[] r2 = recurrent[k + 2];
            final float[] r3 = recurrent[k + 3];
            final float[] r4 = recurrent[k + 4];
            for (int j = 0; j < gates; j++) {
                z[j] = ((((z[j] + h0 * r0[j]) + h1 * r1[j]) + h2 * r2[j]) + h3 * r3[j]) + h4 * r4[j];
            }
        }
        for (; k < h.length; k++) {
            final float hk = h[k];
            final float[] row = recurrent[k];
            for (int j = 0; j < gates; j++) {
                z[j] += hk * row[j];
            }
        }
    }

    /** The gates from z, then c := f c + i g and h := o tanh(c); each tanh clamps first unless its values cannot reach the clamp. */
    private static void update(float[] z, float[] h, float[] c, boolean clampGates, boolean clampCell) {
        final int u = h.length;
        if (clampGates) {
            tanh(z, z.length);
        } else {
            tanhWithinClamp(z);
        }
        for (int j = 0; j < u; j++) {
            float i = 0.5f + 0.5f * z[j];
            float f = 0.5f + 0.5f * z[u + j];
            float cell = f * c[j] + i * z[2 * u + j];
            c[j] = cell;
            h[j] = cell;
        }
        if (clampCell) {
            tanh(h, u);
        } else {
            tanhWithinClamp(h);
        }
        for (int j = 0; j < u; j++) {
            h[j] *= 0.5f + 0.5f * z[3 * u + j];
        }
    }

    /** The C kernel's tanh, in place over x[0..n). */
    static void tanh(float[] x, int n) {
        for (int j = 0; j < n; j++) {
            x[j] = tanhOf(x[j]);
        }
    }

    /** tanh() over x, every value of which is known to lie within the clamp (so clamping would not change it). */
    private static void tanhWithinClamp(float[] x) {
        for (int j = 0; j < x.length; j++) {
            x[j] = rational(x[j]);
        }
    }

    /** The C kernel's tanh: clamp, then an odd rational function of x. */
    private static float tanhOf(float x) {
        return rational(Math.max(-TANH_CLAMP, Math.min(TANH_CLAMP, x)));
    }

    /** The C kernel's odd rational function, for v within the clamp (C2 inlines it into each loop above). */
    private static float rational(float v) {
        float x2 = v * v;
        float p = N0;
        p = p * x2 + N1;
        p = p * x2 + N2;
        p = p * x2 + N3;
        p = p * x2 + N4;
        p = p * x2 + N5;
        p = p * x2 + N6;
        float q = D0;
        q = q * x2 + D1;
        q = q * x2 + D2;
        q = q * x2 + D3;
        return v * p / q;
    }

    /** The mean of the word probability and the n-gram branch's: sigmoid(bias + mean score of the non-zero ids). */
    private float fuse(int[] row, float word) {
        float total = 0.0f + gatheredSum(ngramScores, row, maxlen, ngramLength);
        int count = 0;
        for (int j = maxlen; j < maxlen + ngramLength; j++) {
            count += row[j] != 0 ? 1 : 0;
        }
        float x = ngramBias + total / (float) Math.max(count, 1);
        float ngram = 1.0f / (1.0f + (float) Math.exp(-x));
        return (word + ngram) * 0.5f;
    }

    /** The float sum of scores[ids[from..from+n)] in NumPy's pairwise order (the C kernel's gathered_sum). */
    static float gatheredSum(float[] scores, int[] ids, int from, int n) {
        if (n < 8) {
            float sum = 0.0f;
            for (int i = 0; i < n; i++) {
                sum += scores[ids[from + i]];
            }
            return sum;
        }
        if (n <= 128) {
            float[] r = new float[8];
            for (int j = 0; j < 8; j++) {
                r[j] = scores[ids[from + j]];
            }
            int i = 8;
            for (; i < n - (n % 8); i += 8) {
                for (int j = 0; j < 8; j++) {
                    r[j] += scores[ids[from + i + j]];
                }
            }
            float sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for (; i < n; i++) {
                sum += scores[ids[from + i]];
            }
            return sum;
        }
        int half = n / 2;
        half -= half % 8;
        return gatheredSum(scores, ids, from, half) + gatheredSum(scores, ids, from + half, n - half);
    }
}
