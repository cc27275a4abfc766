package dev.smsguard;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;

/** Strict UTF-8 decoding: a malformed byte is an error, never a silent U+FFFD. */
final class Utf8 {
    private static final Charset UTF_8 = Charset.forName("UTF-8");

    private Utf8() {
    }

    /** Bytes that are not UTF-8. */
    static final class MalformedException extends Exception {
        private static final long serialVersionUID = 1L;

        MalformedException(String message) {
            super(message);
        }
    }

    static String decode(byte[] bytes) throws MalformedException {
        CharsetDecoder decoder = UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        try {
            CharBuffer chars = decoder.decode(in);
            return chars.toString();
        } catch (CharacterCodingException error) {
            throw new MalformedException("bytes that are not UTF-8 at offset " + in.position());
        }
    }
}
