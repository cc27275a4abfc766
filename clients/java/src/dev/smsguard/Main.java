package dev.smsguard;

import java.io.File;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UnsupportedEncodingException;

/**
 * The command line: {@code java -jar smsguard-client.jar BUNDLE [--model NAME] [--ids]} reads one JSON string per
 * line on standard input and writes one JSON object per line, {@code {"probability": p, "label": "spam"|"ham"}}
 * (with {@code "ids"} after {@code --ids}), in input order. {@code --personal DIR} applies the corrections in
 * {@code DIR/personal.json} (smsguard's {@code report}), adds {@code "model_probability"} (the model's, before them)
 * and prints a line {@code note: ...} on standard error when the state is not (wholly) applied. {@code --conformance FILE} runs a conformance file
 * and {@code --bench [--rounds N]} times messages read as above. Exit status 2, with one line on standard error,
 * for a missing or changed bundle, a bad line of input or a bad option; 1 when a conformance check fails.
 */
public final class Main {
    static final int EXIT_MISMATCH = 1;
    static final int EXIT_USAGE = 2;
    static final String USAGE = "usage: java -jar smsguard-client.jar BUNDLE [--model NAME] [--personal DIR] [--ids | --conformance FILE | --bench [--rounds N]]";

    private Main() {
    }

    /** Options of one run. */
    static final class Options {
        String bundle;
        String model;
        String personal;
        boolean ids;
        String conformance;
        boolean bench;
        int rounds = 5;
    }

    /** A usage problem: one line for standard error. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    /** Runs the command and exits with its status. */
    public static void main(String[] args) {
        PrintStream out = utf8(new FileOutputStream(FileDescriptor.out), false);
        PrintStream err = utf8(new FileOutputStream(FileDescriptor.err), true);
        int status = run(args, out, err);
        out.flush();
        System.exit(status);
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        try {
            Options options = parse(args);
            long loadStart = System.nanoTime();
            Classifier classifier = Classifier.load(new File(options.bundle), options.model);
            double loadMillis = (System.nanoTime() - loadStart) / 1e6;
            if (options.personal != null) {
                classifier = classifier.withPersonal(PersonalState.read(new File(options.personal)));
                if (!classifier.personalNote().isEmpty()) {
                    err.println("note: " + classifier.personalNote());
                }
            }
            if (options.conformance != null) {
                return ConformanceRun.run(classifier, new File(options.conformance), out);
            }
            InputStream in = new FileInputStream(FileDescriptor.in);
            if (options.bench) {
                return BenchRun.run(classifier, loadMillis, new JsonLines(in, null), options.rounds, out);
            }
            classifyLines(classifier, new JsonLines(in, out), options.ids, options.personal != null, out);
            return 0;
        } catch (UsageException | BundleException | JsonLines.BadLine error) {
            out.flush();
            err.println("ERROR " + error.getMessage());
            return EXIT_USAGE;
        } catch (IOException error) {
            out.flush();
            err.println("ERROR cannot read the input: " + error.getMessage());
            return EXIT_USAGE;
        }
    }

    static Options parse(String[] args) throws UsageException {
        Options options = new Options();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (arg.equals("--model")) {
                options.model = value(args, ++i, arg);
            } else if (arg.equals("--personal")) {
                options.personal = value(args, ++i, arg);
            } else if (arg.equals("--ids")) {
                options.ids = true;
            } else if (arg.equals("--conformance")) {
                options.conformance = value(args, ++i, arg);
            } else if (arg.equals("--bench")) {
                options.bench = true;
            } else if (arg.equals("--rounds")) {
                options.rounds = rounds(value(args, ++i, arg));
            } else if (arg.startsWith("-") && !arg.equals("-")) {
                throw new UsageException("unknown option '" + arg + "'; " + USAGE);
            } else if (options.bundle == null) {
                options.bundle = arg;
            } else {
                throw new UsageException("unexpected argument '" + arg + "' (the bundle is '" + options.bundle + "'); " + USAGE);
            }
        }
        if (options.bundle == null) {
            throw new UsageException("no bundle given; " + USAGE);
        }
        if (options.bench && options.conformance != null) {
            throw new UsageException("--bench and --conformance are separate runs; give one; " + USAGE);
        }
        return options;
    }

    private static String value(String[] args, int i, String flag) throws UsageException {
        if (i >= args.length) {
            throw new UsageException(flag + " needs a value; " + USAGE);
        }
        return args[i];
    }

    private static int rounds(String text) throws UsageException {
        try {
            int rounds = Integer.parseInt(text);
            if (rounds >= 1) {
                return rounds;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new UsageException("--rounds must be a positive integer, found '" + text + "'");
    }

    private static void classifyLines(Classifier classifier, JsonLines lines, boolean ids, boolean personal, PrintStream out) throws IOException, JsonLines.BadLine {
        StringBuilder line = new StringBuilder();
        for (String text; (text = lines.next()) != null; ) {
            int[] row = classifier.encode(text);
            Prediction prediction = classifier.predictionOf(classifier.probability(row));
            line.setLength(0);
            line.append("{\"probability\": ").append((double) prediction.probability()).append(", \"label\": ").append(Json.quote(prediction.label()));
            if (personal) {
                line.append(", \"model_probability\": ").append((double) classifier.modelProbability(row));
            }
            if (ids) {
                line.append(", \"ids\": [");
                for (int j = 0; j < row.length; j++) {
                    line.append(j > 0 ? ", " : "").append(row[j]);
                }
                line.append(']');
            }
            out.append(line.append("}\n"));
        }
    }

    private static PrintStream utf8(FileOutputStream stream, boolean autoFlush) {
        try {
            return new PrintStream(new java.io.BufferedOutputStream(stream, 1 << 16), autoFlush, "UTF-8");
        } catch (UnsupportedEncodingException error) {
            throw new IllegalStateException("every Java platform has UTF-8", error);
        }
    }
}
