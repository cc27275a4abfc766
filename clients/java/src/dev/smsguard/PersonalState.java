package dev.smsguard;

import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * A user's corrections as smsguard's Python runtime keeps them ({@code DIR/personal.json}, written by
 * {@code smsguard report}; the format is docs/reference/personal-state.md). This library reads and applies a state
 * ({@link Classifier#withPersonal}); it never writes one, and never fits its weights.
 *
 * <pre>{@code
 * Classifier personal = classifier.withPersonal(PersonalState.read(new File(context.getFilesDir(), "personal")));
 * if (!personal.personalNote().isEmpty()) Log.w("smsguard", personal.personalNote());
 * }</pre>
 */
public final class PersonalState {
    static final String FILE_NAME = "personal.json";
    private static final long FORMAT = 1;
    private static final String KIND = "smsguard personal state";

    final String where;
    final long buckets;
    final long minN;
    final long maxN;
    final long length;
    final boolean lower;
    final String textSha256;
    final Map<String, Object> learner; // as written: hashed into the fit's digest
    final double deadZone;
    final double anchorMargin;
    final double near;
    final double nearMargin;
    final long[] ids; // each correction's id
    final String[] labels; // and label
    final int[][] bags; // and its distinct n-gram ids, sorted
    final int[] weightIds; // null: no weights (never fitted, or an undo dropped them)
    final float[] weightValues;
    final String fittedFor;

    private PersonalState(String where, JsonObject state) throws BundleException {
        this.where = where;
        if (!state.has("kind") || !KIND.equals(state.raw("kind")) || !state.has("format") || !Long.valueOf(FORMAT).equals(state.raw("format"))) {
            throw state.malformed("expected '" + KIND + "' format " + FORMAT + ", found kind " + JsonObject.describe(state.has("kind") ? state.raw("kind") : null)
                    + " format " + JsonObject.describe(state.has("format") ? state.raw("format") : null));
        }
        JsonObject bag = state.object("bag");
        buckets = bag.integer("buckets");
        minN = bag.integer("min_n");
        maxN = bag.integer("max_n");
        length = bag.integer("length");
        lower = bag.bool("lower");
        textSha256 = bag.string("text_sha256");
        JsonObject learn = state.object("learner");
        learner = learn.map();
        deadZone = learn.number("dead_zone");
        anchorMargin = learn.number("anchor_margin");
        near = learn.number("near");
        nearMargin = learn.number("near_margin");
        List<Object> corrections = state.list("corrections");
        ids = new long[corrections.size()];
        labels = new String[corrections.size()];
        bags = splitBags(state, corrections);
        if (state.isNull("weights")) {
            weightIds = null;
            weightValues = null;
            fittedFor = "";
        } else {
            JsonObject weights = state.object("weights");
            weightIds = uint32(weights, "ids");
            weightValues = float32(weights, "values", weightIds.length);
            fittedFor = weights.string("fitted_for");
        }
    }

    private int[][] splitBags(JsonObject state, List<Object> corrections) throws BundleException {
        int[] all = uint32(state, "bags");
        int[][] out = new int[corrections.size()][];
        int at = 0;
        for (int i = 0; i < out.length; i++) {
            if (!(corrections.get(i) instanceof Map)) {
                throw state.malformed("corrections[" + i + "] must be an object");
            }
            @SuppressWarnings("unchecked")
            JsonObject item = new JsonObject((Map<String, Object>) corrections.get(i), where, "corrections[" + i + "].");
            ids[i] = item.integer("id");
            labels[i] = item.string("label");
            int size = item.integer("size", 0, all.length - at);
            out[i] = java.util.Arrays.copyOfRange(all, at, at + size);
            at += size;
        }
        if (at != all.length) {
            throw state.malformed("the corrections' sizes add up to " + at + " n-gram ids, but 'bags' holds " + all.length);
        }
        return out;
    }

    /**
     * The state in {@code folder} ({@code folder/personal.json}); null when the folder holds none yet ({@code withPersonal(null)} applies nothing).
     *
     * @throws BundleException when the folder does not exist, or the file cannot be read or is not a personal state
     */
    public static PersonalState read(File folder) throws BundleException {
        if (!folder.isDirectory()) {
            throw new BundleException("personal state folder '" + folder + "' " + (folder.exists() ? "is not a folder" : "does not exist")
                    + "; create it (mkdir) or give another --personal");
        }
        File file = new File(folder, FILE_NAME);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file.toPath());
        } catch (NoSuchFileException missing) {
            return null;
        } catch (IOException error) {
            throw new BundleException("personal state '" + file + "' cannot be read: " + error.getMessage());
        }
        return parse(bytes, file.toString());
    }

    /** A state from the bytes of a {@code personal.json} ({@code where} names it in errors). */
    public static PersonalState parse(byte[] bytes, String where) throws BundleException {
        String name = "personal state '" + where + "'";
        try {
            return new PersonalState(where, JsonObject.read(bytes, name));
        } catch (BundleException error) {
            throw new BundleException(error.getMessage() + "; it is not a state this runtime reads: move it away to start afresh");
        }
    }

    /** How many corrections it holds. */
    public int size() {
        return bags.length;
    }

    /** The fit's digest for a vocabulary file: the state's weights are for a bundle whose digest is {@link #fittedFor}. */
    String fitDigest(String vocabularySha256) {
        StringBuilder corrections = new StringBuilder();
        for (int i = 0; i < ids.length; i++) {
            corrections.append(i > 0 ? "," : "").append(ids[i]).append(labels[i]);
        }
        return Bundle.sha256((PythonJson.dumps(learner) + "\n" + vocabularySha256 + "\n" + corrections).getBytes(Charset.forName("UTF-8")));
    }

    /** As Python's BagSpec.describe. */
    String describeBag() {
        return describe(buckets, minN, maxN, length, textSha256);
    }

    static String describe(long buckets, long minN, long maxN, long length, String text) {
        return buckets + " buckets, n-grams of " + minN + " to " + maxN + " characters, " + length + " ids, text spec "
                + (text.isEmpty() ? "none" : text.substring(0, Math.min(12, text.length())));
    }

    private static ByteBuffer base64(JsonObject object, String key, int width) throws BundleException {
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(object.string(key));
        } catch (IllegalArgumentException error) {
            throw object.malformed("field '" + key + "' is not base64: " + error.getMessage());
        }
        if (bytes.length % width != 0) {
            throw object.malformed("field '" + key + "' holds " + bytes.length + " bytes, not a whole number of " + width + "-byte values");
        }
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static int[] uint32(JsonObject object, String key) throws BundleException {
        ByteBuffer buffer = base64(object, key, 4);
        int[] out = new int[buffer.remaining() / 4];
        for (int i = 0; i < out.length; i++) {
            out[i] = buffer.getInt();
            if (out[i] < 0) {
                throw object.malformed("field '" + key + "' holds the n-gram id " + (out[i] & 0xffffffffL) + ", past any bag's");
            }
        }
        return out;
    }

    private static float[] float32(JsonObject object, String key, int count) throws BundleException {
        ByteBuffer buffer = base64(object, key, 4);
        if (buffer.remaining() / 4 != count) {
            throw object.malformed("field '" + key + "' holds " + buffer.remaining() / 4 + " weights for " + count + " ids");
        }
        float[] out = new float[count];
        for (int i = 0; i < count; i++) {
            out[i] = buffer.getFloat();
        }
        return out;
    }
}
