package dev.smsguard;

import java.util.List;
import java.util.Map;

/** A JSON object of a bundle file with typed getters whose errors name the file and the field. */
final class JsonObject {
    private final Map<String, Object> map;
    private final String where; // e.g. "vocabulary 'bundle/vocab.json'"
    private final String path; // the field path so far, e.g. "ngrams."

    JsonObject(Map<String, Object> map, String where, String path) {
        this.map = map;
        this.where = where;
        this.path = path;
    }

    /** The document in {@code bytes} (UTF-8) as an object, or BundleException naming {@code where}. */
    static JsonObject read(byte[] bytes, String where) throws BundleException {
        return read(bytes, where, java.util.Collections.<String>emptySet());
    }

    /** As {@link #read(byte[], String)}, without the values of the top-level keys in {@code skipped} (null instead). */
    static JsonObject read(byte[] bytes, String where, java.util.Set<String> skipped) throws BundleException {
        Object value;
        try {
            value = Json.parse(Utf8.decode(bytes), skipped);
        } catch (Utf8.MalformedException | Json.JsonException error) {
            throw new BundleException(where + " is not readable JSON: " + error.getMessage());
        }
        if (!(value instanceof Map)) {
            throw new BundleException(where + " must hold a JSON object");
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> map = (Map<String, Object>) value;
        return new JsonObject(map, where, "");
    }

    boolean has(String key) {
        return map.containsKey(key);
    }

    boolean isNull(String key) {
        return map.get(key) == null;
    }

    Map<String, Object> map() {
        return map;
    }

    Object raw(String key) throws BundleException {
        if (!map.containsKey(key)) {
            throw malformed("missing field '" + path + key + "'");
        }
        return map.get(key);
    }

    String string(String key) throws BundleException {
        Object value = raw(key);
        if (!(value instanceof String)) {
            throw wrongType(key, "a string", value);
        }
        return (String) value;
    }

    String stringOrNull(String key) throws BundleException {
        return map.get(key) == null ? null : string(key);
    }

    long integer(String key) throws BundleException {
        Object value = raw(key);
        if (!(value instanceof Long)) {
            throw wrongType(key, "an integer", value);
        }
        return (Long) value;
    }

    /** An integer field that must lie in {@code low..high}. */
    int integer(String key, long low, long high) throws BundleException {
        long value = integer(key);
        if (value < low || value > high) {
            throw malformed("field '" + path + key + "' must be from " + low + " to " + high + ", found " + value);
        }
        return (int) value;
    }

    double number(String key) throws BundleException {
        Object value = raw(key);
        if (!(value instanceof Number)) {
            throw wrongType(key, "a number", value);
        }
        return ((Number) value).doubleValue();
    }

    boolean bool(String key) throws BundleException {
        Object value = raw(key);
        if (!(value instanceof Boolean)) {
            throw wrongType(key, "true or false", value);
        }
        return (Boolean) value;
    }

    JsonObject object(String key) throws BundleException {
        Object value = raw(key);
        if (!(value instanceof Map)) {
            throw wrongType(key, "an object", value);
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> inner = (Map<String, Object>) value;
        return new JsonObject(inner, where, path + key + ".");
    }

    List<Object> list(String key) throws BundleException {
        Object value = raw(key);
        if (!(value instanceof List)) {
            throw wrongType(key, "an array", value);
        }
        @SuppressWarnings("unchecked")
        List<Object> list = (List<Object>) value;
        return list;
    }

    BundleException malformed(String what) {
        return new BundleException(where + " is malformed: " + what);
    }

    private BundleException wrongType(String key, String expected, Object found) {
        return malformed("field '" + path + key + "' must be " + expected + ", found " + describe(found));
    }

    static String describe(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String) {
            return Json.quote((String) value);
        }
        if (value instanceof Map) {
            return "an object";
        }
        if (value instanceof List) {
            return "an array";
        }
        return String.valueOf(value);
    }
}
