package dev.smsguard;

import java.io.IOException;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code --bench}: the time of one message, end to end (text in, probability and label out), after warming the
 * JIT on every message for at least {@link #WARM_UP_NANOS}; then {@code rounds} passes each timing every message
 * alone, and the same passes timed whole for the bulk rate. Prints one JSON line.
 */
final class BenchRun {
    static final long WARM_UP_NANOS = 2_000_000_000L; // C2 compiles the hot loops within the first second or so
    private static volatile float sink; // keeps the JIT from dropping the work

    private BenchRun() {
    }

    static int run(Classifier classifier, double loadMillis, JsonLines lines, int rounds, PrintStream out) throws IOException, JsonLines.BadLine {
        List<String> texts = new ArrayList<String>();
        for (String text; (text = lines.next()) != null; ) {
            texts.add(text);
        }
        if (texts.isEmpty()) {
            throw new JsonLines.BadLine("no messages to time: give one JSON string per line on standard input");
        }
        long warmStart = System.nanoTime();
        do {
            pass(classifier, texts);
        } while (System.nanoTime() - warmStart < WARM_UP_NANOS);
        double warmUp = (System.nanoTime() - warmStart) / 1e9;
        long[] single = new long[texts.size() * rounds];
        long[] whole = new long[rounds];
        int k = 0;
        for (int round = 0; round < rounds; round++) {
            for (String text : texts) {
                long start = System.nanoTime();
                sink = classifier.classify(text).probability();
                single[k++] = System.nanoTime() - start;
            }
            long start = System.nanoTime();
            pass(classifier, texts);
            whole[round] = System.nanoTime() - start;
        }
        Arrays.sort(single);
        Arrays.sort(whole);
        double bulk = texts.size() / (whole[rounds / 2] / 1e9);
        out.println(String.format(Locale.ROOT,
                "{\"runtime\": %s, \"model\": %s, \"messages\": %d, \"rounds\": %d, \"load_ms\": %.1f, \"warm_up_s\": %.2f, \"p50_us\": %.2f, \"p90_us\": %.2f, \"p99_us\": %.2f, "
                        + "\"bulk_msgs_per_s\": %.1f}",
                Json.quote("java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")"), Json.quote(classifier.model()),
                texts.size(), rounds, loadMillis, warmUp, percentile(single, 50), percentile(single, 90), percentile(single, 99), bulk));
        return 0;
    }

    private static void pass(Classifier classifier, List<String> texts) {
        float total = 0;
        for (String text : texts) {
            total += classifier.classify(text).probability();
        }
        sink = total;
    }

    /** NumPy's default (linear) percentile of sorted nanoseconds, in microseconds. */
    static double percentile(long[] sorted, double q) {
        double rank = q / 100 * (sorted.length - 1);
        int low = (int) Math.floor(rank);
        int high = Math.min(low + 1, sorted.length - 1);
        return (sorted[low] + (rank - low) * (sorted[high] - sorted[low])) / 1e3;
    }
}
