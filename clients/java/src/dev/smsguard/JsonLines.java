package dev.smsguard;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;

/**
 * The command line's input: one JSON string per line, UTF-8 (a {@code \\u} escape may give a lone surrogate).
 * The output stream is flushed whenever reading the next line would wait, so a caller that writes a line and
 * waits for its answer gets it, while piped input is written in large blocks.
 */
final class JsonLines {
    /** A line that is not a JSON string: the message names its number. */
    static final class BadLine extends Exception {
        private static final long serialVersionUID = 1L;

        BadLine(String message) {
            super(message);
        }
    }

    private final InputStream in;
    private final PrintStream out;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();
    private final byte[] buffer = new byte[1 << 16];
    private int position;
    private int limit;
    private int number;

    JsonLines(InputStream in, PrintStream out) {
        this.in = in;
        this.out = out;
    }

    /** The next message, or null at the end of the input. */
    String next() throws IOException, BadLine {
        line.reset();
        while (true) {
            if (position == limit && !fill()) {
                if (line.size() == 0) {
                    return null;
                }
                break;
            }
            int end = position;
            while (end < limit && buffer[end] != '\n') {
                end++;
            }
            line.write(buffer, position, end - position);
            position = end;
            if (end < limit) {
                position++; // the newline
                break;
            }
        }
        number++;
        return parse(line.toByteArray());
    }

    /** Reads more input; false at its end. Flushes the output first when the read would wait. */
    private boolean fill() throws IOException {
        if (out != null && in.available() == 0) {
            out.flush();
        }
        limit = Math.max(in.read(buffer), 0);
        position = 0;
        return limit > 0;
    }

    private String parse(byte[] bytes) throws BadLine {
        Object value;
        try {
            value = Json.parse(Utf8.decode(bytes));
        } catch (Utf8.MalformedException error) {
            throw new BadLine("line " + number + " of the input is not UTF-8: " + error.getMessage());
        } catch (Json.JsonException error) {
            throw new BadLine("line " + number + " of the input is not JSON (expected one JSON string per line): " + error.getMessage());
        }
        if (!(value instanceof String)) {
            throw new BadLine("line " + number + " of the input is " + JsonObject.describe(value) + ", expected a JSON string (the message's text)");
        }
        return (String) value;
    }
}
