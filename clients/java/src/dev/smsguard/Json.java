package dev.smsguard;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A strict JSON reader of our own (RFC 8259), so the library needs nothing beyond the standard library.
 * Objects become {@code Map<String, Object>} (insertion order), arrays {@code List<Object>}, numbers
 * {@code Long} when written without fraction or exponent (and in range) else {@code Double}, and
 * {@code null} becomes Java null. A {@code \\u} escape of a lone surrogate gives that UTF-16 unit, as Python
 * reads it; raw control characters in strings are refused.
 */
final class Json {
    private static final int MAX_DEPTH = 512; // far more than any bundle file nests; keeps a hostile file off the stack

    private final String text;
    private final java.util.Set<String> skipped; // top-level keys whose values are checked for syntax but not built
    private int at;

    private Json(String text, java.util.Set<String> skipped) {
        this.text = text;
        this.skipped = skipped;
    }

    /** The value of a whole JSON document; {@link JsonException} names the offset of the first problem. */
    static Object parse(String text) throws JsonException {
        return parse(text, java.util.Collections.<String>emptySet());
    }

    /**
     * The document, without the values of the top-level keys in {@code skipped} (read for their syntax, built as
     * null): the manifest's golden vectors, hundreds of kB that only {@code verify} reads.
     */
    static Object parse(String text, java.util.Set<String> skipped) throws JsonException {
        Json reader = new Json(text, skipped);
        reader.skipSpace();
        Object value = reader.value(0);
        reader.skipSpace();
        if (reader.at != text.length()) {
            throw reader.problem("unexpected text after the value");
        }
        return value;
    }

    /** A problem in a JSON document: where, and what was expected. */
    static final class JsonException extends Exception {
        private static final long serialVersionUID = 1L;

        JsonException(String message) {
            super(message);
        }
    }

    private JsonException problem(String what) {
        return new JsonException(what + " at character " + at);
    }

    private Object value(int depth) throws JsonException {
        if (depth > MAX_DEPTH) {
            throw problem("nesting deeper than " + MAX_DEPTH);
        }
        if (at >= text.length()) {
            throw problem("expected a value, found the end");
        }
        char c = text.charAt(at);
        switch (c) {
            case '{':
                return object(depth);
            case '[':
                return array(depth);
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", null);
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    return number();
                }
                throw problem("unexpected character '" + c + "'");
        }
    }

    private Map<String, Object> object(int depth) throws JsonException {
        Map<String, Object> map = new LinkedHashMap<String, Object>();
        at++;
        skipSpace();
        if (peek() == '}') {
            at++;
            return map;
        }
        while (true) {
            skipSpace();
            if (peek() != '"') {
                throw problem("expected a string key");
            }
            String key = string();
            skipSpace();
            expect(':');
            skipSpace();
            if (depth == 0 && skipped.contains(key)) {
                skipValue();
                map.put(key, null);
            } else {
                map.put(key, value(depth + 1));
            }
            skipSpace();
            if (peek() == ',') {
                at++;
            } else {
                expect('}');
                return map;
            }
        }
    }

    private List<Object> array(int depth) throws JsonException {
        List<Object> list = new ArrayList<Object>();
        at++;
        skipSpace();
        if (peek() == ']') {
            at++;
            return list;
        }
        while (true) {
            skipSpace();
            list.add(value(depth + 1));
            skipSpace();
            if (peek() == ',') {
                at++;
            } else {
                expect(']');
                return list;
            }
        }
    }

    private String string() throws JsonException {
        at++; // the opening quote
        StringBuilder out = null;
        int start = at;
        while (true) {
            if (at >= text.length()) {
                throw problem("unterminated string");
            }
            char c = text.charAt(at);
            if (c == '"') {
                String tail = text.substring(start, at++);
                return out == null ? tail : out.append(tail).toString();
            }
            if (c < 0x20) {
                throw problem("control character U+" + hex4(c) + " in a string");
            }
            if (c != '\\') {
                at++;
                continue;
            }
            if (out == null) {
                out = new StringBuilder();
            }
            out.append(text, start, at);
            at++;
            out.append(escape());
            start = at;
        }
    }

    private char escape() throws JsonException {
        if (at >= text.length()) {
            throw problem("unterminated escape");
        }
        char c = text.charAt(at++);
        switch (c) {
            case '"':
            case '\\':
            case '/':
                return c;
            case 'b':
                return '\b';
            case 'f':
                return '\f';
            case 'n':
                return '\n';
            case 'r':
                return '\r';
            case 't':
                return '\t';
            case 'u':
                return unicodeEscape();
            default:
                at--;
                throw problem("invalid escape '\\" + c + "'");
        }
    }

    private char unicodeEscape() throws JsonException {
        if (at + 4 > text.length()) {
            throw problem("truncated \\u escape");
        }
        int value = 0;
        for (int i = 0; i < 4; i++) {
            int digit = Character.digit(text.charAt(at + i), 16);
            if (digit < 0) {
                throw problem("invalid \\u escape");
            }
            value = value * 16 + digit;
        }
        at += 4;
        return (char) value; // a lone surrogate stays one: a pair is two escapes, joined by the String itself
    }

    /** Past one value, its brackets balanced and its strings closed, building nothing. */
    private void skipValue() throws JsonException {
        int open = 0;
        do {
            if (at >= text.length()) {
                throw problem("unterminated value");
            }
            char c = text.charAt(at);
            if (c == '"') {
                skipString();
                continue;
            }
            if (c == '{' || c == '[') {
                open++;
            } else if (c == '}' || c == ']') {
                if (--open < 0) {
                    throw problem("unexpected '" + c + "'");
                }
            } else if (open == 0 && c == ',') {
                throw problem("expected a value");
            }
            at++;
        } while (open > 0 || (at < text.length() && ",}] \t\n\r".indexOf(text.charAt(at)) < 0));
    }

    private void skipString() throws JsonException {
        for (at++; at < text.length(); at++) {
            char c = text.charAt(at);
            if (c == '\\') {
                at++;
            } else if (c == '"') {
                at++;
                return;
            }
        }
        throw problem("unterminated string");
    }

    private Object number() throws JsonException {
        int start = at;
        if (peek() == '-') {
            at++;
        }
        if (peek() == '0') {
            at++;
        } else if (!digits()) {
            throw problem("invalid number");
        }
        boolean integral = true;
        if (peek() == '.') {
            at++;
            integral = false;
            if (!digits()) {
                throw problem("invalid number");
            }
        }
        if (peek() == 'e' || peek() == 'E') {
            at++;
            integral = false;
            if (peek() == '+' || peek() == '-') {
                at++;
            }
            if (!digits()) {
                throw problem("invalid number");
            }
        }
        String literal = text.substring(start, at);
        if (integral && literal.length() < 19) {
            return Long.valueOf(literal);
        }
        return Double.valueOf(literal);
    }

    private boolean digits() {
        int start = at;
        while (at < text.length() && text.charAt(at) >= '0' && text.charAt(at) <= '9') {
            at++;
        }
        return at > start;
    }

    private Object literal(String word, Object value) throws JsonException {
        if (!text.startsWith(word, at)) {
            throw problem("unexpected character '" + text.charAt(at) + "'");
        }
        at += word.length();
        return value;
    }

    private void expect(char c) throws JsonException {
        if (peek() != c) {
            throw problem(at < text.length() ? "expected '" + c + "', found '" + text.charAt(at) + "'" : "expected '" + c + "', found the end");
        }
        at++;
    }

    private char peek() {
        return at < text.length() ? text.charAt(at) : '\0';
    }

    private void skipSpace() {
        while (at < text.length()) {
            char c = text.charAt(at);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                return;
            }
            at++;
        }
    }

    /** {@code s} as a JSON string literal, every character outside printable ASCII escaped (lone surrogates too). */
    static String quote(String s) {
        StringBuilder out = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c >= 0x20 && c < 0x7f) {
                out.append(c);
            } else {
                out.append("\\u").append(hex4(c));
            }
        }
        return out.append('"').toString();
    }

    private static String hex4(char c) {
        String digits = Integer.toHexString(c);
        return "0000".substring(digits.length()) + digits;
    }
}
