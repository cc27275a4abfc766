package dev.smsguard;

import java.io.IOException;

/**
 * A bundle that cannot be used: a file missing or unreadable, malformed, or of a format this library does not
 * read. The message names the file, what was expected and found, and what to do.
 */
public class BundleException extends IOException {
    private static final long serialVersionUID = 1L;

    /** @param message one line: the file, what was expected, what was found, what to do */
    public BundleException(String message) {
        super(message);
    }
}
