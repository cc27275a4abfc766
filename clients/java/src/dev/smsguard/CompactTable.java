package dev.smsguard;

import java.util.Map;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The input table of a compact model ({@code .npz} format 2): the int8 embedding, its scale per row, the LSTM's input
 * kernel and bias, kept apart in the file. A token's row is folded the first time a message uses it, as the Python
 * runtime folds every row at load: (embedding row x its scale) @ kernel + bias, summed in double in the order of the
 * embedding's columns and rounded once to float, then the gate halving. A bundle loads as fast as with the int8 table,
 * and only the words a device sees cost memory. Safe to share between threads: two threads folding one row compute
 * the same floats, and the array publishes whichever lands.
 */
final class CompactTable {
    final int rows;
    private final int width; // the embedding's columns
    private final int gates;
    private final byte[] embedding; // rows x width
    private final float[] scale;
    private final double[] kernel; // width x gates
    private final float[] bias;
    private final float[] half;
    private final AtomicReferenceArray<float[]> folded;

    private CompactTable(byte[] embedding, int rows, int width, float[] scale, double[] kernel, float[] bias, float[] half) {
        this.rows = rows;
        this.width = width;
        this.gates = bias.length;
        this.embedding = embedding;
        this.scale = scale;
        this.kernel = kernel;
        this.bias = bias;
        this.half = half;
        this.folded = new AtomicReferenceArray<float[]>(rows);
    }

    /** The compact table of a model's arrays, its shapes checked. */
    static CompactTable read(Map<String, Npz.Array> arrays, float[] half, String where) throws BundleException {
        int gates = half.length;
        Npz.Array q = need(arrays, "embedding_q", where);
        Npz.Array k = need(arrays, "kernel", where);
        float[] scale = Npz.floats(need(arrays, "embedding_scale", where), where);
        float[] bias = Npz.floats(need(arrays, "bias", where), where);
        boolean ok = q.shape.length == 2 && k.shape.length == 2 && k.shape[0] == q.shape[1] && k.shape[1] == gates && scale.length == q.shape[0]
                && bias.length == gates && gates > 0;
        if (!ok) {
            throw new BundleException("model '" + where + "' has inconsistent compact table arrays: embedding " + java.util.Arrays.toString(q.shape) + ", kernel "
                    + java.util.Arrays.toString(k.shape) + ", " + scale.length + " scales and " + bias.length + " biases for " + gates + " gate columns");
        }
        float[] kernel = Npz.floats(k, where);
        double[] wide = new double[kernel.length];
        for (int i = 0; i < wide.length; i++) {
            wide[i] = kernel[i];
        }
        return new CompactTable(Npz.int8(q, where), q.shape[0], q.shape[1], scale, wide, bias, half);
    }

    private static Npz.Array need(Map<String, Npz.Array> arrays, String name, String where) throws BundleException {
        Npz.Array array = arrays.get(name);
        if (array == null) {
            throw new BundleException("model '" + where + "' has no array '" + name + "'; re-export the bundle");
        }
        return array;
    }

    /** The token's row of the table, halved: folded on its first use. */
    float[] row(int token) {
        float[] row = folded.get(token);
        if (row == null) {
            row = fold(token);
            folded.set(token, row);
        }
        return row;
    }

    private float[] fold(int token) {
        double[] sum = new double[gates];
        for (int c = 0; c < width; c++) {
            final double x = (double) embedding[token * width + c] * (double) scale[token];
            final int at = c * gates;
            for (int j = 0; j < gates; j++) {
                sum[j] += x * kernel[at + j];
            }
        }
        float[] row = new float[gates];
        for (int j = 0; j < gates; j++) {
            row[j] = (float) (sum[j] + (double) bias[j]) * half[j];
        }
        return row;
    }
}
