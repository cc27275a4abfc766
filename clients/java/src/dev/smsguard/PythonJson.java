package dev.smsguard;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * JSON written as Python's {@code json.dumps(value, sort_keys=True)} writes it (", " and ": " between items, keys
 * sorted by code point, every character outside printable ASCII as a {@code \\u} escape, floats as Python's
 * {@code repr}): what smsguard hashes to name a vocabulary's text spec and a personal state's fit.
 */
final class PythonJson {
    private static final Comparator<String> BY_CODE_POINT = new Comparator<String>() {
        @Override
        public int compare(String a, String b) {
            int i = 0;
            while (i < a.length() && i < b.length()) {
                int x = a.codePointAt(i);
                int y = b.codePointAt(i);
                if (x != y) {
                    return x < y ? -1 : 1;
                }
                i += Character.charCount(x);
            }
            return a.length() - b.length();
        }
    };

    private PythonJson() {
    }

    /** {@code value} (Map, List, String, Long, Double, Boolean or null, as {@link Json} reads them) sorted and dumped. */
    static String dumps(Object value) {
        StringBuilder out = new StringBuilder();
        write(value, out);
        return out.toString();
    }

    private static void write(Object value, StringBuilder out) {
        if (value instanceof Map) {
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) value;
            List<String> keys = new ArrayList<String>(map.keySet());
            Collections.sort(keys, BY_CODE_POINT);
            out.append('{');
            for (int i = 0; i < keys.size(); i++) {
                string(keys.get(i), out.append(i > 0 ? ", " : ""));
                write(map.get(keys.get(i)), out.append(": "));
            }
            out.append('}');
        } else if (value instanceof List) {
            List<?> list = (List<?>) value;
            out.append('[');
            for (int i = 0; i < list.size(); i++) {
                write(list.get(i), out.append(i > 0 ? ", " : ""));
            }
            out.append(']');
        } else if (value instanceof String) {
            string((String) value, out);
        } else if (value instanceof Double) {
            out.append(repr((Double) value));
        } else {
            out.append(value == null ? "null" : value.toString()); // Long, Boolean
        }
    }

    private static void string(String text, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            String shortForm = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : null;
            if (shortForm != null) {
                out.append(shortForm);
            } else if (c >= 0x20 && c < 0x7f) {
                out.append(c);
            } else {
                out.append(String.format("\\u%04x", (int) c));
            }
        }
        out.append('"');
    }

    /** Python's {@code repr} of a float: "10.0", "0.1", "1e-07", "1.5e+16". */
    static String repr(double x) {
        if (Double.isNaN(x) || Double.isInfinite(x)) {
            return Double.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
        }
        String sign = x < 0 || x == 0 && 1 / x < 0 ? "-" : "";
        BigDecimal d = new BigDecimal(Double.toString(Math.abs(x))).stripTrailingZeros();
        String digits = d.unscaledValue().toString();
        int exponent = digits.length() - 1 - d.scale();
        if (x == 0) {
            return sign + "0.0";
        }
        if (exponent < -4 || exponent >= 16) {
            String mantissa = digits.length() > 1 ? digits.charAt(0) + "." + digits.substring(1) : digits;
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
        }
        String plain = d.toPlainString();
        return sign + (plain.indexOf('.') < 0 ? plain + ".0" : plain);
    }
}
