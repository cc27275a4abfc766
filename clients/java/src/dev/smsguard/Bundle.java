package dev.smsguard;

import java.io.File;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A bundle written by {@code smsguard export}: its manifest, read and checked, and its input encoding. Every
 * file is checked against the SHA-256 its manifest pins before it is used; a changed file is refused with an
 * {@link IntegrityException} naming it. Immutable and safe to share between threads.
 */
public final class Bundle {
    static final String MANIFEST = "manifest.json";

    private final BundleSource source;
    private final Manifest manifest;
    private final String manifestSha256;
    private final Encoder encoder;

    private Bundle(BundleSource source, Manifest manifest, String manifestSha256, Encoder encoder) {
        this.source = source;
        this.manifest = manifest;
        this.manifestSha256 = manifestSha256;
        this.encoder = encoder;
    }

    /** The bundle in {@code folder}. */
    public static Bundle load(File folder) throws BundleException {
        return load(BundleSource.folder(folder));
    }

    /** The bundle read through {@code source}: the manifest, then the vocabulary, checked against it. */
    public static Bundle load(BundleSource source) throws BundleException {
        byte[] raw = source.read(MANIFEST);
        Manifest manifest = new Manifest(raw, source.locate(MANIFEST));
        Bundle partial = new Bundle(source, manifest, sha256(raw), null);
        Encoder encoder = Encoder.read(partial.verified(manifest.vocabulary), source.locate(manifest.vocabulary));
        return new Bundle(source, manifest, partial.manifestSha256, encoder);
    }

    /** The input encoding of every model of the bundle. */
    public Encoder encoder() {
        return encoder;
    }

    /** The model files this library runs ({@code .npz}), in manifest order. */
    public List<String> npzModels() {
        List<String> names = new ArrayList<String>();
        for (Manifest.Entry entry : manifest.files.values()) {
            if ("model".equals(entry.kind) && "npz".equals(entry.format)) {
                names.add(entry.name);
            }
        }
        return Collections.unmodifiableList(names);
    }

    /** The {@code .npz} model the manifest recommends (the default of {@link Classifier#load}), or null. */
    public String recommendedModel() {
        return manifest.recommendedNpz;
    }

    /** The threshold {@code model} is used at: its own when the manifest gives one, else the bundle's. */
    public double threshold(String model) throws BundleException {
        Double own = entry(model).threshold;
        return own != null ? own : manifest.threshold;
    }

    /** The label below the threshold ("ham"). */
    public String negativeLabel() {
        return manifest.labelNegative;
    }

    /** The label at or above the threshold ("spam"): models output its probability. */
    public String positiveLabel() {
        return manifest.labelPositive;
    }

    /** The bundle's serial: never lower for a later bundle of the same filter. */
    public long serial() {
        return manifest.serial;
    }

    /** The SHA-256 of {@code manifest.json} (lowercase hex), which pins every other file. */
    public String manifestSha256() {
        return manifestSha256;
    }

    /** How errors name the bundle. */
    public String where() {
        return source.where();
    }

    Manifest manifest() {
        return manifest;
    }

    /** The SHA-256 of the vocabulary file, as the manifest pins it (a personal state's weights are fitted for one). */
    String vocabularySha256() throws BundleException {
        return entry(manifest.vocabulary).sha256;
    }

    boolean hasFile(String name) {
        return manifest.files.containsKey(name);
    }

    Manifest.Entry entry(String name) throws BundleException {
        Manifest.Entry entry = manifest.files.get(name);
        if (entry == null) {
            throw new BundleException("bundle '" + source.where() + "' has no file '" + name + "'; it has: " + join(manifest.files.keySet()));
        }
        return entry;
    }

    /** A file's bytes, refused unless their SHA-256 is the manifest's. */
    byte[] verified(String name) throws BundleException {
        Manifest.Entry entry = entry(name);
        byte[] bytes = source.read(name);
        String actual = sha256(bytes);
        if (!actual.equals(entry.sha256)) {
            throw new IntegrityException("bundle file '" + source.locate(name) + "' does not match its manifest: expected sha256 " + entry.sha256 + ", found " + actual
                    + " (" + bytes.length + " bytes, expected " + entry.size + "); the file was changed or truncated, re-export the bundle or copy it again");
        }
        return bytes;
    }

    String locate(String name) {
        return source.locate(name);
    }

    static String join(Iterable<String> names) {
        StringBuilder out = new StringBuilder();
        for (String name : names) {
            out.append(out.length() > 0 ? ", " : "").append(name);
        }
        return out.toString();
    }

    static String sha256(byte[] bytes) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(bytes);
            StringBuilder hex = new StringBuilder(64);
            for (byte b : digest) {
                hex.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException error) {
            throw new IllegalStateException("this Java has no SHA-256, which every Java platform must provide", error);
        }
    }
}
