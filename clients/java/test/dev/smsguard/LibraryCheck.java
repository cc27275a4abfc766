package dev.smsguard;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Checks of the library's Java API that the command line cannot reach, run by tests/test_client_java.py:
 * {@code threads BUNDLE TEXTS N M} (N threads x M passes over the texts give the serial results, bit for bit) and
 * {@code api BUNDLE} (the exceptions of bad calls, and a bundle read through streams) and {@code encode BUNDLE TEXTS}
 * (the ids of {@code Bundle.encoder()} alone, as an app that feeds LiteRT computes them: a bundle with no .npz model
 * will do). Prints one JSON object.
 */
public final class LibraryCheck {
    private LibraryCheck() {
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("threads")) {
            System.out.println(threads(new File(args[1]), readTexts(new File(args[2])), Integer.parseInt(args[3]), Integer.parseInt(args[4])));
        } else if (args[0].equals("api")) {
            System.out.println(api(new File(args[1])));
        } else if (args[0].equals("encode")) {
            System.out.println(encode(new File(args[1]), readTexts(new File(args[2]))));
        } else {
            throw new IllegalArgumentException("unknown check " + args[0]);
        }
    }

    private static List<String> readTexts(File file) throws IOException, Json.JsonException {
        List<String> texts = new ArrayList<String>();
        BufferedReader reader = new BufferedReader(new InputStreamReader(new FileInputStream(file), "UTF-8"));
        try {
            for (String line; (line = reader.readLine()) != null; ) {
                texts.add((String) Json.parse(line));
            }
        } finally {
            reader.close();
        }
        return texts;
    }

    /** {"ids": [[...], ...]}: each text's model input from the bundle's encoder, no model loaded. */
    private static String encode(File bundle, List<String> texts) throws Exception {
        Encoder encoder = Bundle.load(bundle).encoder();
        StringBuilder out = new StringBuilder("{\"ids\": [");
        for (int i = 0; i < texts.size(); i++) {
            out.append(i > 0 ? ", " : "").append(Arrays.toString(encoder.encode(texts.get(i))));
        }
        return out.append("]}").toString();
    }

    /**
     * Every thread classifies every text M times, each in its own order; all must equal the serial pass, made by
     * another Classifier first (so that a compact model's rows are folded by the threads, concurrently).
     */
    private static String threads(File bundle, final List<String> texts, int threads, final int passes) throws Exception {
        final Classifier first = Classifier.load(bundle);
        final float[] serial = new float[texts.size()];
        final int[][] serialIds = new int[texts.size()][];
        for (int i = 0; i < texts.size(); i++) {
            serial[i] = first.probability(texts.get(i));
            serialIds[i] = first.encode(texts.get(i));
        }
        final Classifier classifier = Classifier.load(bundle);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        List<Future<Integer>> results = new ArrayList<Future<Integer>>();
        for (int t = 0; t < threads; t++) {
            final int offset = t * 7919;
            results.add(pool.submit(() -> {
                int mismatches = 0;
                for (int pass = 0; pass < passes; pass++) {
                    for (int k = 0; k < texts.size(); k++) {
                        int i = (k + offset + pass * 31) % texts.size();
                        float p = classifier.probability(texts.get(i));
                        boolean same = Float.floatToIntBits(p) == Float.floatToIntBits(serial[i]) && Arrays.equals(classifier.encode(texts.get(i)), serialIds[i]);
                        mismatches += same ? 0 : 1;
                    }
                }
                return mismatches;
            }));
        }
        int mismatches = 0;
        for (Future<Integer> result : results) {
            mismatches += result.get();
        }
        pool.shutdown();
        return "{\"threads\": " + threads + ", \"calls\": " + (long) threads * passes * texts.size() + ", \"mismatches\": " + mismatches + "}";
    }

    private static String api(final File bundle) throws Exception {
        Map<String, String> out = new LinkedHashMap<String, String>();
        final Classifier classifier = Classifier.load(bundle);
        out.put("encode(null)", thrown(() -> classifier.encode(null)));
        out.put("classify(null)", thrown(() -> classifier.classify(null)));
        out.put("probability(null row)", thrown(() -> classifier.probability((int[]) null)));
        out.put("probability(short row)", thrown(() -> classifier.probability(new int[3])));
        final int[] bad = classifier.encode("hello");
        bad[bad.length - 1] = -5;
        out.put("probability(bad id)", thrown(() -> classifier.probability(bad)));
        out.put("load(tflite)", thrown(() -> Classifier.load(bundle, "model.float32.tflite")));
        out.put("load(missing model)", thrown(() -> Classifier.load(bundle, "model.nope.npz")));
        out.put("folder(null)", thrown(() -> BundleSource.folder(null)));
        Classifier streamed = Classifier.load(BundleSource.streams("assets/bundle", new BundleSource.Opener() {
            @Override
            public InputStream open(String name) throws IOException {
                return new FileInputStream(new File(bundle, name));
            }
        }), null);
        String text = "WINNER!! Claim your prize now: call 09061701461";
        out.put("streams gives the folder's result", String.valueOf(streamed.probability(text) == classifier.probability(text)));
        out.put("streams missing file", thrown(() -> Classifier.load(BundleSource.streams("assets/empty", name -> {
            throw new java.io.FileNotFoundException(name);
        }), null)));
        Prediction prediction = classifier.classify(text);
        out.put("prediction", prediction.label() + " " + prediction.isSpam() + " " + (prediction.probability() >= classifier.threshold()));
        out.put("width", classifier.encoder().width() + " = " + classifier.encoder().maxlen() + " + " + classifier.encoder().ngramLength());
        StringBuilder json = new StringBuilder("{");
        for (Map.Entry<String, String> entry : out.entrySet()) {
            json.append(json.length() > 1 ? ", " : "").append(Json.quote(entry.getKey())).append(": ").append(Json.quote(entry.getValue()));
        }
        return json.append('}').toString();
    }

    /** A call expected to throw. */
    private interface Call {
        void run() throws Exception;
    }

    private static String thrown(Call call) {
        try {
            call.run();
            return "no exception";
        } catch (Exception error) {
            return error.getClass().getSimpleName() + ": " + error.getMessage();
        }
    }
}
