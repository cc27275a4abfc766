package dev.smsguard;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code --conformance FILE}: the cases of a conformance file ({@code smsguard conformance}) through this runtime,
 * every model it lists: ids identical, probabilities within the file's tolerance, labels identical. Prints a
 * checklist line per check and a summary; exit status 0 when everything conforms, else 1.
 */
final class ConformanceRun {
    private static final int FORMAT = 1;
    private static final int SHOWN = 5; // failing cases printed per check

    private final Bundle bundle;
    private final JsonObject file;
    private final PrintStream out;

    private ConformanceRun(Bundle bundle, JsonObject file, PrintStream out) {
        this.bundle = bundle;
        this.file = file;
        this.out = out;
    }

    static int run(Classifier loaded, File path, PrintStream out) throws BundleException {
        JsonObject file = JsonObject.read(read(path), "conformance file '" + path + "'");
        if (file.integer("format") != FORMAT) {
            throw new BundleException("conformance file '" + path + "' has format " + file.integer("format") + ", this runtime reads format " + FORMAT);
        }
        String expected = file.object("bundle").string("manifest_sha256");
        Bundle bundle = loaded.bundle();
        if (!expected.equals(bundle.manifestSha256())) {
            throw new BundleException("conformance file '" + path + "' was made for another bundle (manifest sha256 " + expected + "), not '" + bundle.where()
                    + "' (manifest sha256 " + bundle.manifestSha256() + "); generate it with `smsguard conformance " + bundle.where() + " --out FILE`");
        }
        return new ConformanceRun(bundle, file, out).check(path);
    }

    private static byte[] read(File path) throws BundleException {
        try {
            InputStream in = new FileInputStream(path);
            try {
                java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
                byte[] buffer = new byte[1 << 16];
                for (int n; (n = in.read(buffer)) > 0; ) {
                    bytes.write(buffer, 0, n);
                }
                return bytes.toByteArray();
            } finally {
                in.close();
            }
        } catch (IOException error) {
            throw new BundleException("conformance file '" + path + "' cannot be read: " + error.getMessage());
        }
    }

    private int check(File path) throws BundleException {
        List<Object> cases = file.list("cases");
        List<Object> models = file.list("models");
        double tolerance = file.object("tolerance").number("probability");
        String within = java.math.BigDecimal.valueOf(tolerance).stripTrailingZeros().toPlainString();
        out.println("* Conformance of the Java runtime (" + System.getProperty("java.vm.name") + " " + System.getProperty("java.version") + ") with '" + path + "': "
                + cases.size() + " cases, " + models.size() + " models");
        List<JsonObject> parsed = new ArrayList<JsonObject>();
        for (int i = 0; i < cases.size(); i++) {
            if (!(cases.get(i) instanceof Map)) {
                throw file.malformed("cases[" + i + "] must be an object");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = (Map<String, Object>) cases.get(i);
            parsed.add(new JsonObject(map, "conformance file '" + path + "'", "cases[" + i + "]."));
        }
        boolean passed = checkIds(parsed);
        int failedModels = 0;
        for (Object model : models) {
            if (!(model instanceof String)) {
                throw file.malformed("models must be file names, found " + JsonObject.describe(model));
            }
            if (!checkModel((String) model, parsed, tolerance, within)) {
                failedModels++;
            }
        }
        if (passed && failedModels == 0) {
            out.println("* All " + cases.size() + " cases conform: ids identical, " + models.size() + " models within " + within + " with the same labels");
            return 0;
        }
        out.println("ERROR " + (passed ? "" : "ids differ; ") + failedModels + " of " + models.size() + " models do not conform (details above)");
        return Main.EXIT_MISMATCH;
    }

    private boolean checkIds(List<JsonObject> cases) throws BundleException {
        List<String> problems = new ArrayList<String>();
        Encoder encoder = bundle.encoder();
        for (JsonObject item : cases) {
            int[] ids = encoder.encode(item.string("text"));
            List<Object> expected = item.list("ids");
            int first = firstDifference(ids, expected);
            if (first >= 0) {
                problems.add("case " + Json.quote(item.string("name")) + ": column " + first + " is " + (first < ids.length ? ids[first] : "missing")
                        + ", expected " + (first < expected.size() ? expected.get(first) : "missing"));
            }
        }
        mark(problems.isEmpty(), "ids: " + (cases.size() - problems.size()) + " of " + cases.size() + " cases identical", problems);
        return problems.isEmpty();
    }

    private static int firstDifference(int[] ids, List<Object> expected) {
        for (int j = 0; j < Math.max(ids.length, expected.size()); j++) {
            if (j >= ids.length || j >= expected.size() || !Long.valueOf(ids[j]).equals(expected.get(j))) {
                return j;
            }
        }
        return -1;
    }

    private boolean checkModel(String model, List<JsonObject> cases, double tolerance, String within) throws BundleException {
        Classifier classifier = Classifier.of(bundle, model);
        List<String> problems = new ArrayList<String>();
        double worst = 0;
        for (JsonObject item : cases) {
            double expected = item.object("probabilities").number(model);
            Prediction got = classifier.classify(item.string("text"));
            Prediction want = classifier.predictionOf((float) expected);
            double diff = Math.abs(got.probability() - expected);
            worst = Math.max(worst, diff);
            if (!(diff <= tolerance) || !got.label().equals(want.label())) {
                problems.add("case " + Json.quote(item.string("name")) + ": probability " + got.probability() + " (" + got.label() + "), expected " + expected
                        + " (" + want.label() + ")");
            }
        }
        mark(problems.isEmpty(), model + ": " + (cases.size() - problems.size()) + " of " + cases.size() + " probabilities within " + within
                + " with the same label (max diff " + String.format(java.util.Locale.ROOT, "%.2g", worst) + ")", problems);
        return problems.isEmpty();
    }

    private void mark(boolean ok, String line, List<String> problems) {
        out.println("  -[" + (ok ? "\u2713" : "x") + "] " + line);
        for (int i = 0; i < Math.min(SHOWN, problems.size()); i++) {
            out.println("        " + problems.get(i));
        }
        if (problems.size() > SHOWN) {
            out.println("        ... and " + (problems.size() - SHOWN) + " more");
        }
    }
}
