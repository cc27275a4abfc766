package dev.smsguard;

/** A bundle file whose bytes do not match the SHA-256 its manifest pins: changed, truncated or replaced. */
public final class IntegrityException extends BundleException {
    private static final long serialVersionUID = 1L;

    /** @param message one line naming the file and both hashes */
    public IntegrityException(String message) {
        super(message);
    }
}
