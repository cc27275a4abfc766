package dev.smsguard;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * NumPy's {@code .npz} (a zip of {@code .npy} files, stored or deflated, zip64 included) read from bytes already
 * checked against the manifest. Only what a model file holds: little-endian float32, int8, and a 0-d unicode
 * string ({@code meta}), C order.
 */
final class Npz {
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order':\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");
    private static final int LOCAL = 0x04034b50;
    private static final int CENTRAL = 0x02014b50;
    private static final int END = 0x06054b50;
    private static final int END64 = 0x06064b50;
    private static final int END64_LOCATOR = 0x07064b50;

    private final ByteBuffer zip;
    private final String where;

    private Npz(byte[] bytes, String where) {
        this.zip = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        this.where = where;
    }

    /** One array of the file. */
    static final class Array {
        final String name;
        final String descr;
        final int[] shape;
        private final ByteBuffer data;

        Array(String name, String descr, int[] shape, ByteBuffer data) {
            this.name = name;
            this.descr = descr;
            this.shape = shape;
            this.data = data.order(ByteOrder.LITTLE_ENDIAN);
        }

        int size() {
            long n = 1;
            for (int d : shape) {
                n *= d;
            }
            return (int) n;
        }
    }

    /** The arrays of an .npz file by name (without ".npy"). */
    static Map<String, Array> read(byte[] bytes, String where) throws BundleException {
        return new Npz(bytes, where).arrays();
    }

    private BundleException malformed(String what) {
        return new BundleException("model '" + where + "' is not a readable .npz file: " + what + "; re-export the bundle");
    }

    private Map<String, Array> arrays() throws BundleException {
        try {
            long[] directory = centralDirectory();
            Map<String, Array> arrays = new HashMap<String, Array>();
            int at = (int) directory[1];
            for (long i = 0; i < directory[0]; i++) {
                at = entry(at, arrays);
            }
            return arrays;
        } catch (IndexOutOfBoundsException | IllegalArgumentException | java.nio.BufferUnderflowException error) {
            throw malformed("truncated or inconsistent zip structure");
        }
    }

    /** {entries, offset} of the central directory. */
    private long[] centralDirectory() throws BundleException {
        int end = -1;
        for (int at = zip.limit() - 22; at >= Math.max(0, zip.limit() - 22 - 65535); at--) {
            if (zip.getInt(at) == END) {
                end = at;
                break;
            }
        }
        if (end < 0) {
            throw malformed("no zip directory");
        }
        long entries = zip.getShort(end + 10) & 0xFFFF;
        long offset = zip.getInt(end + 16) & 0xFFFFFFFFL;
        if ((entries == 0xFFFF || offset == 0xFFFFFFFFL) && end >= 20 && zip.getInt(end - 20) == END64_LOCATOR) {
            int end64 = (int) zip.getLong(end - 20 + 8);
            if (zip.getInt(end64) != END64) {
                throw malformed("bad zip64 directory");
            }
            entries = zip.getLong(end64 + 32);
            offset = zip.getLong(end64 + 48);
        }
        return new long[] {entries, offset};
    }

    /** Reads the central directory entry at {@code at} and its array; returns where the next entry starts. */
    private int entry(int at, Map<String, Array> arrays) throws BundleException {
        if (zip.getInt(at) != CENTRAL) {
            throw malformed("bad zip directory entry");
        }
        int method = zip.getShort(at + 10) & 0xFFFF;
        long compressed = zip.getInt(at + 20) & 0xFFFFFFFFL;
        long size = zip.getInt(at + 24) & 0xFFFFFFFFL;
        int nameLength = zip.getShort(at + 28) & 0xFFFF;
        int extraLength = zip.getShort(at + 30) & 0xFFFF;
        int commentLength = zip.getShort(at + 32) & 0xFFFF;
        long local = zip.getInt(at + 42) & 0xFFFFFFFFL;
        String name = ascii(at + 46, nameLength);
        long[] sizes = zip64(at + 46 + nameLength, extraLength, new long[] {size, compressed, local});
        int header = (int) sizes[2];
        if (zip.getInt(header) != LOCAL) {
            throw malformed("bad local header of '" + name + "'");
        }
        int start = header + 30 + (zip.getShort(header + 26) & 0xFFFF) + (zip.getShort(header + 28) & 0xFFFF);
        byte[] content = content(name, method, start, sizes[1], sizes[0]);
        if (name.endsWith(".npy")) {
            String key = name.substring(0, name.length() - 4);
            arrays.put(key, npy(key, content));
        }
        return at + 46 + nameLength + extraLength + commentLength;
    }

    /** The zip64 extra field's values for those of {size, compressed, offset} that are 0xFFFFFFFF. */
    private long[] zip64(int at, int length, long[] values) {
        for (int end = at + length; at + 4 <= end; ) {
            int id = zip.getShort(at) & 0xFFFF;
            int size = zip.getShort(at + 2) & 0xFFFF;
            if (id == 1) {
                int field = at + 4;
                for (int i = 0; i < 3; i++) {
                    if (values[i] == 0xFFFFFFFFL) {
                        values[i] = zip.getLong(field);
                        field += 8;
                    }
                }
            }
            at += 4 + size;
        }
        return values;
    }

    private byte[] content(String name, int method, int start, long compressed, long size) throws BundleException {
        if (size > Integer.MAX_VALUE - 8 || compressed > Integer.MAX_VALUE - 8) {
            throw malformed("entry '" + name + "' is too large");
        }
        byte[] out = new byte[(int) size];
        if (method == 0) {
            ((ByteBuffer) zip.duplicate().position(start)).get(out);
            return out;
        }
        if (method != 8) {
            throw malformed("entry '" + name + "' uses zip method " + method + " (expected stored or deflated)");
        }
        Inflater inflater = new Inflater(true);
        try {
            inflater.setInput(zip.array(), start, (int) compressed);
            if (inflater.inflate(out) != size) {
                throw malformed("entry '" + name + "' is shorter than its directory says");
            }
            return out;
        } catch (DataFormatException error) {
            throw malformed("entry '" + name + "' does not inflate: " + error.getMessage());
        } finally {
            inflater.end();
        }
    }

    private String ascii(int at, int length) {
        StringBuilder out = new StringBuilder(length);
        for (int i = 0; i < length; i++) {
            out.append((char) (zip.get(at + i) & 0xFF));
        }
        return out.toString();
    }

    private Array npy(String key, byte[] bytes) throws BundleException {
        ByteBuffer npy = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 10 || (bytes[0] & 0xFF) != 0x93 || bytes[1] != 'N' || bytes[2] != 'U' || bytes[3] != 'M' || bytes[4] != 'P' || bytes[5] != 'Y') {
            throw malformed("'" + key + ".npy' is not a .npy array");
        }
        int major = bytes[6];
        int headerLength = major == 1 ? npy.getShort(8) & 0xFFFF : npy.getInt(8);
        int headerStart = major == 1 ? 10 : 12;
        String header = new String(bytes, headerStart, headerLength, java.nio.charset.Charset.forName("UTF-8"));
        Matcher descr = DESCR.matcher(header);
        Matcher fortran = FORTRAN.matcher(header);
        Matcher shape = SHAPE.matcher(header);
        if (!descr.find() || !fortran.find() || !shape.find()) {
            throw malformed("'" + key + ".npy' has an unreadable header");
        }
        if (fortran.group(1).equals("True")) {
            throw malformed("'" + key + ".npy' is in Fortran order");
        }
        ByteBuffer data = ((ByteBuffer) npy.position(headerStart + headerLength)).slice();
        return new Array(key, descr.group(1), dimensions(key, shape.group(1)), data);
    }

    private int[] dimensions(String key, String shape) throws BundleException {
        String[] parts = shape.split(",");
        int count = 0;
        int[] dims = new int[parts.length];
        for (String part : parts) {
            String trimmed = part.trim();
            if (!trimmed.isEmpty()) {
                try {
                    dims[count++] = Integer.parseInt(trimmed.endsWith("L") ? trimmed.substring(0, trimmed.length() - 1) : trimmed);
                } catch (NumberFormatException error) {
                    throw malformed("'" + key + ".npy' has shape (" + shape + ")");
                }
            }
        }
        return java.util.Arrays.copyOf(dims, count);
    }

    /** The array's values as float32 ("<f4"), in C order. */
    static float[] floats(Array array, String where) throws BundleException {
        if (!array.descr.equals("<f4")) {
            throw new BundleException("model '" + where + "': array '" + array.name + "' has dtype " + array.descr + ", expected <f4 (float32)");
        }
        float[] out = new float[array.size()];
        array.data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** The array's values as int8 ("|i1"), in C order. */
    static byte[] int8(Array array, String where) throws BundleException {
        if (!array.descr.equals("|i1") && !array.descr.equals("<i1")) {
            throw new BundleException("model '" + where + "': array '" + array.name + "' has dtype " + array.descr + ", expected |i1 (int8)");
        }
        byte[] out = new byte[array.size()];
        array.data.duplicate().get(out);
        return out;
    }

    /** A 0-d unicode array ("<U n", UTF-32LE padded with NULs) as a String. */
    static String unicode(Array array, String where) throws BundleException {
        if (!array.descr.startsWith("<U") || array.shape.length != 0) {
            throw new BundleException("model '" + where + "': array '" + array.name + "' has dtype " + array.descr + ", expected a 0-d <U string");
        }
        int chars = Integer.parseInt(array.descr.substring(2));
        ByteBuffer data = array.data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        StringBuilder out = new StringBuilder(chars);
        for (int i = 0; i < chars; i++) {
            int cp = data.getInt(i * 4);
            if (cp == 0) {
                break;
            }
            out.appendCodePoint(cp);
        }
        return out.toString();
    }
}
