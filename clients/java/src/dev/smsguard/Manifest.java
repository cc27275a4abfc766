package dev.smsguard;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code manifest.json}: what a bundle holds (each file's size and SHA-256), its labels and thresholds. */
final class Manifest {
    private static final int READ_MAJOR = 1; // this library reads manifest format 1.x
    // What this library never reads, skipped rather than built: the golden vectors (for `verify`) and the clients.
    private static final java.util.Set<String> UNREAD = new java.util.HashSet<String>(java.util.Arrays.asList("golden", "clients"));

    /** One file of the bundle as the manifest pins it. */
    static final class Entry {
        final String name;
        final String kind;
        final long size;
        final String sha256;
        final String format; // models only, else null
        final String quantization;
        final Double threshold; // a model's own threshold, or null

        Entry(JsonObject entry) throws BundleException {
            name = entry.string("name");
            kind = entry.string("kind");
            size = entry.integer("size");
            sha256 = entry.string("sha256");
            boolean model = kind.equals("model");
            format = model ? entry.string("format") : null;
            quantization = model ? entry.string("quantization") : null;
            threshold = model && !entry.isNull("threshold") ? entry.number("threshold") : null;
        }
    }

    /** A file of the full bundle that a pack left out, and the `smsguard pack` arguments of a pack that holds it. */
    static final class LeftOut {
        final String name;
        final String format; // models only, else null
        final String pack; // e.g. "--for pi"; null when only the full bundle holds it
        final boolean inJavaPack; // the java pack holds it without --model

        LeftOut(JsonObject entry) throws BundleException {
            name = entry.string("name");
            format = entry.stringOrNull("format");
            pack = entry.stringOrNull("pack");
            inJavaPack = entry.has("targets") && entry.list("targets").contains("java");
        }

        /** The pack that holds it, the java pack first; the Python runtime's wording. */
        String where() {
            String args = inJavaPack ? "--for java" : pack;
            return args != null ? "`smsguard pack BUNDLE " + args + "` makes a pack that holds it" : "only the full bundle holds it";
        }
    }

    final String formatVersion;
    final String labelNegative;
    final String labelPositive;
    final double threshold;
    final long serial;
    final String vocabulary;
    final String recommendedNpz; // null when the manifest recommends none
    final Map<String, Entry> files;
    final String packTarget; // a pack's target (`smsguard pack --for`); null for a full bundle
    final String packRunsIn; // what reads the pack, in words
    final List<LeftOut> leftOut; // what a pack left out of its full bundle; empty for a full bundle

    Manifest(byte[] bytes, String where) throws BundleException {
        JsonObject manifest = JsonObject.read(bytes, "manifest '" + where + "'", UNREAD);
        formatVersion = checkFormat(manifest, where);
        List<Object> labels = manifest.list("labels");
        if (labels.size() != 2 || !(labels.get(0) instanceof String) || !(labels.get(1) instanceof String)) {
            throw manifest.malformed("expected two labels");
        }
        labelNegative = (String) labels.get(0);
        labelPositive = (String) labels.get(1);
        threshold = checkThreshold(manifest, manifest.number("threshold"), "the bundle");
        serial = manifest.has("serial") ? manifest.integer("serial") : 0;
        vocabulary = manifest.string("vocabulary");
        recommendedNpz = manifest.has("recommended") ? manifest.object("recommended").stringOrNull("npz") : null;
        Map<String, Entry> entries = new LinkedHashMap<String, Entry>();
        List<Object> list = manifest.list("files");
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof Map)) {
                throw manifest.malformed("files[" + i + "] must be an object");
            }
            @SuppressWarnings("unchecked")
            Entry entry = new Entry(new JsonObject((Map<String, Object>) list.get(i), "manifest '" + where + "'", "files[" + i + "]."));
            if (entry.threshold != null) {
                checkThreshold(manifest, entry.threshold, "model '" + entry.name + "'");
            }
            entries.put(entry.name, entry);
        }
        if (!entries.containsKey(vocabulary)) {
            throw manifest.malformed("the vocabulary '" + vocabulary + "' is not among its files");
        }
        files = Collections.unmodifiableMap(entries);
        JsonObject pack = manifest.has("pack") && !manifest.isNull("pack") ? manifest.object("pack") : null;
        packTarget = pack != null ? pack.string("target") : null;
        packRunsIn = pack != null && pack.has("runs_in") ? pack.string("runs_in") : "";
        List<LeftOut> left = new java.util.ArrayList<LeftOut>();
        List<Object> leftList = pack != null && pack.has("left_out") ? pack.list("left_out") : Collections.emptyList();
        for (int i = 0; i < leftList.size(); i++) {
            if (!(leftList.get(i) instanceof Map)) {
                throw manifest.malformed("pack.left_out[" + i + "] must be an object");
            }
            @SuppressWarnings("unchecked")
            LeftOut entry = new LeftOut(new JsonObject((Map<String, Object>) leftList.get(i), "manifest '" + where + "'", "pack.left_out[" + i + "]."));
            left.add(entry);
        }
        leftOut = Collections.unmodifiableList(left);
    }

    /** The .npz model a pack left out under {@code name}, or null. */
    LeftOut leftOutModel(String name) {
        for (LeftOut entry : leftOut) {
            if (entry.name.equals(name) && "npz".equals(entry.format)) {
                return entry;
            }
        }
        return null;
    }

    /**
     * For a pack: its target, and the pack holding its full bundle's .npz model (the Java runtime's pack first), as a
     * refusal appends them; "" for a full bundle. The wording is the Python runtime's.
     */
    String packHint() {
        if (packTarget == null) {
            return "";
        }
        LeftOut found = null;
        for (LeftOut entry : leftOut) {
            if ("npz".equals(entry.format) && (found == null || entry.inJavaPack && !found.inJavaPack)) {
                found = entry;
            }
        }
        String where = found != null ? "; its full bundle's " + found.name + " is left out, and " + found.where() : "";
        return "; it is packed for " + packTarget + " (" + packRunsIn + ")" + where;
    }

    private static String checkFormat(JsonObject manifest, String where) throws BundleException {
        Object version = manifest.has("format_version") ? manifest.raw("format_version") : null;
        int major;
        try {
            major = Integer.parseInt(String.valueOf(version).split("\\.")[0]);
        } catch (NumberFormatException error) {
            throw new BundleException("manifest '" + where + "' has no valid format_version (found " + JsonObject.describe(version) + "); re-export the bundle");
        }
        if (major > READ_MAJOR) {
            Object writer = manifest.has("smsguard_version") ? manifest.raw("smsguard_version") : null;
            String written = writer instanceof String ? ", written by smsguard " + writer : "";
            throw new BundleException("manifest '" + where + "' has format " + version + written + "; this Java runtime reads format " + READ_MAJOR
                    + ".x: use the client library released with that smsguard");
        }
        return String.valueOf(version);
    }

    private static double checkThreshold(JsonObject manifest, double value, String whose) throws BundleException {
        if (!(value >= 0.0 && value <= 1.0)) {
            throw manifest.malformed(whose + " has threshold " + value + ", expected one in [0, 1]");
        }
        return value;
    }
}
