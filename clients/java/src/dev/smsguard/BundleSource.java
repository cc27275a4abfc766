package dev.smsguard;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;

/**
 * Where a bundle's files are read from: a folder, or any stream opener (Android assets, a download cache).
 * Every file read through it is checked against the manifest's SHA-256 before it is used.
 *
 * <pre>{@code
 * BundleSource files = BundleSource.folder(new File(context.getFilesDir(), "bundle"));
 * BundleSource assets = BundleSource.streams("assets/bundle", name -> context.getAssets().open("bundle/" + name));
 * }</pre>
 */
public final class BundleSource {
    /** Opens one bundle file by its plain name ("manifest.json", "vocab.json", "model.int8.npz"). */
    public interface Opener {
        /**
         * @param name a file name of the bundle, never a path
         * @return the file's bytes, from the start
         * @throws FileNotFoundException when the bundle has no such file
         * @throws IOException when it cannot be read
         */
        InputStream open(String name) throws IOException;
    }

    private final String where;
    private final Opener opener;
    private final File folder;

    private BundleSource(String where, Opener opener, File folder) {
        this.where = where;
        this.opener = opener;
        this.folder = folder;
    }

    /** The bundle in {@code folder} (the folder {@code smsguard export} wrote). */
    public static BundleSource folder(final File folder) {
        if (folder == null) {
            throw new NullPointerException("folder must not be null");
        }
        return new BundleSource(folder.getPath(), new Opener() {
            @Override
            public InputStream open(String name) throws IOException {
                return new FileInputStream(new File(folder, name));
            }
        }, folder);
    }

    /**
     * A bundle read through {@code opener}.
     *
     * @param where how error messages name the bundle, e.g. "assets/bundle"
     * @param opener opens a file of the bundle by name; throws {@link FileNotFoundException} for a missing one
     */
    public static BundleSource streams(String where, Opener opener) {
        if (where == null || opener == null) {
            throw new NullPointerException("where and opener must not be null");
        }
        return new BundleSource(where, opener, null);
    }

    /** How error messages name the bundle: the folder's path, or the {@code where} given to {@link #streams}. */
    public String where() {
        return where;
    }

    String locate(String name) {
        return where + "/" + name;
    }

    /** A file's bytes; BundleException naming it when it is missing or unreadable. */
    byte[] read(String name) throws BundleException {
        if (folder != null && !folder.isDirectory()) {
            String what = folder.exists() ? "is not a folder" : "does not exist";
            throw new BundleException("bundle '" + where + "' " + what + "; create one with `smsguard export RUN_DIR --out " + where + "`");
        }
        if (name.indexOf('/') >= 0 || name.indexOf('\\') >= 0 || name.equals("..") || name.equals(".") || name.isEmpty()) {
            throw new BundleException("manifest names file '" + name + "' outside its bundle '" + where + "'");
        }
        InputStream in = null;
        try {
            in = opener.open(name);
            if (in == null) {
                throw new FileNotFoundException(name);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buffer = new byte[1 << 16];
            for (int n; (n = in.read(buffer)) > 0; ) {
                out.write(buffer, 0, n);
            }
            return out.toByteArray();
        } catch (FileNotFoundException missing) {
            throw new BundleException("bundle file '" + locate(name) + "' is missing; re-export the bundle or copy the whole folder");
        } catch (IOException error) {
            throw new BundleException("bundle file '" + locate(name) + "' cannot be read: " + error.getMessage());
        } finally {
            closeQuietly(in);
        }
    }

    private static void closeQuietly(InputStream in) {
        if (in != null) {
            try {
                in.close();
            } catch (IOException ignored) {
                // nothing was written: a failed close loses nothing
            }
        }
    }
}
