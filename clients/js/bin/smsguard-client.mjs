#!/usr/bin/env node
// smsguard-client: a bundle's model in Node, for scripts and for the checks that compare every runtime.
//   node smsguard-client.mjs BUNDLE [--model NAME] [--ids]      one JSON string a line in, one JSON object a line out
//   node smsguard-client.mjs BUNDLE --personal DIR [...]       the corrections in DIR/personal.json applied (smsguard report);
//                                                                each line adds "model_probability", a note goes to stderr
//   node smsguard-client.mjs BUNDLE --conformance FILE           run a conformance file (exit 0: all cases pass)
//   node smsguard-client.mjs BUNDLE --bench [--rounds N]         time each message of stdin alone, after warm-up
// --kernel picks the model's step: wasm (WebAssembly SIMD, the default where there is one) or js (plain JS).
// Exit 2 with one line on stderr for a missing or tampered bundle, a bad argument or a bad line of input.
import { readFile } from "node:fs/promises";
import { withPersonal } from "../personal.mjs";
import { Bundle, SmsguardError } from "../smsguard.mjs";

const USAGE = "usage: smsguard-client BUNDLE [--model NAME] [--kernel auto|wasm|js] [--personal DIR] [--ids] | --conformance FILE | --bench [--rounds N]";
const WARM_UP_MS = 2000; // the JIT settles well within this on every message set we tried

class UsageError extends Error {}

function parseArgs(argv) {
  const options = { bundle: null, model: undefined, kernel: "auto", ids: false, personal: null, conformance: null, bench: false, rounds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value; ${USAGE}`);
      return argv[++i];
    };
    if (arg === "--model") options.model = value();
    else if (arg === "--ids") options.ids = true;
    else if (arg === "--personal") options.personal = value();
    else if (arg === "--kernel") options.kernel = value();
    else if (arg === "--conformance") options.conformance = value();
    else if (arg === "--bench") options.bench = true;
    else if (arg === "--rounds") options.rounds = Number(value());
    else if (arg === "-h" || arg === "--help") throw new UsageError(USAGE);
    else if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}; ${USAGE}`);
    else if (options.bundle === null) options.bundle = arg;
    else throw new UsageError(`unexpected argument ${arg}; ${USAGE}`);
  }
  if (!["auto", "wasm", "js"].includes(options.kernel)) throw new UsageError(`--kernel must be auto, wasm or js, found ${options.kernel}; ${USAGE}`);
  if (options.bundle === null) throw new UsageError(`a BUNDLE folder is needed; ${USAGE}`);
  if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new UsageError(`--rounds must be a positive integer; ${USAGE}`);
  return options;
}

class InputError extends Error {}

/** The lines of stdin as batches of [number, bytes]: every complete line of a read, so that a batch's results are
 * written before the next read waits (a caller may write one message and wait for its answer). */
async function* lineBatches() {
  let number = 0;
  let partial = []; // the chunks of a line not yet ended
  for await (const chunk of process.stdin) {
    const batch = [];
    let start = 0;
    for (let end = chunk.indexOf(10); end >= 0; start = end + 1, end = chunk.indexOf(10, start)) {
      batch.push([++number, partial.length ? Buffer.concat([...partial, chunk.subarray(start, end)]) : chunk.subarray(start, end)]);
      partial = [];
    }
    if (start < chunk.length) partial.push(chunk.subarray(start));
    if (batch.length) yield batch;
  }
  if (partial.length) yield [[++number, Buffer.concat(partial)]];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The message of a line: a JSON string, or an InputError naming the line. */
function textOf([number, bytes]) {
  let text;
  try {
    text = JSON.parse(utf8.decode(bytes));
  } catch (error) {
    const what = error instanceof SyntaxError ? "JSON (expected one JSON string per line)" : "UTF-8";
    throw new InputError(`line ${number} of the input is not ${what}: ${error.message}`);
  }
  if (typeof text !== "string") {
    const found = text === null ? "null" : Array.isArray(text) ? "an array" : typeof text === "object" ? "an object" : String(text);
    throw new InputError(`line ${number} of the input is ${found}, expected a JSON string (the message's text)`);
  }
  return text;
}

async function* messages() {
  for await (const batch of lineBatches()) for (const line of batch) yield textOf(line);
}

// One write a batch of lines; the results of the lines before a bad one are written before the error.
async function classifyStdin(classifier, withIds) {
  let pending = "";
  try {
    for await (const batch of lineBatches()) {
      for (const line of batch) {
        const text = textOf(line);
        const { probability, modelProbability } = classifier.scores ? classifier.scores(text) : { probability: classifier.probability(text) };
        const label = classifier.labelOf(probability);
        const out = modelProbability === undefined ? { probability, label } : { probability, label, model_probability: modelProbability };
        if (withIds) out.ids = Array.from(classifier.encode(text));
        pending += `${JSON.stringify(out)}\n`;
      }
      const written = process.stdout.write(pending);
      pending = "";
      if (!written) await new Promise((resolve) => process.stdout.once("drain", resolve));
    }
  } finally {
    process.stdout.write(pending);
  }
  return 0;
}

// ---- --conformance --------------------------------------------------------------------------------------
// The checklist the Java client prints too: ids, then each model's probabilities and labels; up to five cases of a
// failed check.

const SHOWN = 5;

async function conformance(bundle, file, kernel) {
  let spec;
  try {
    spec = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new InputError(`conformance file '${file}' cannot be read: ${error.code === "ENOENT" ? "it does not exist" : error.message}`);
  }
  if (spec?.format !== 1) throw new InputError(`conformance file '${file}' has format ${JSON.stringify(spec?.format)}, this runtime reads format 1`);
  if (!Array.isArray(spec.cases) || !Array.isArray(spec.models) || typeof spec.tolerance?.probability !== "number") throw new InputError(`conformance file '${file}' is malformed: expected models, cases and tolerance.probability`);
  if (spec.bundle?.manifest_sha256 !== bundle.manifestSha256) {
    const where = bundle.reader.base;
    throw new InputError(`conformance file '${file}' was made for another bundle (manifest sha256 ${spec.bundle?.manifest_sha256}), not '${where}' (manifest sha256 ${bundle.manifestSha256}); generate it with \`smsguard conformance ${where} --out FILE\``);
  }
  const { cases, models } = spec;
  const within = decimal(spec.tolerance.probability);
  const log = (line) => process.stdout.write(`${line}\n`);
  log(`* Conformance of the JavaScript runtime (Node ${process.versions.node}, kernel ${kernel}) with '${file}': ${cases.length} cases, ${models.length} models`);
  const classifiers = [];
  for (const model of models) classifiers.push(await bundle.classifier(model, kernel));
  const idProblems = checkIds(bundle.vocabulary, cases);
  mark(log, idProblems, `ids: ${cases.length - idProblems.length} of ${cases.length} cases identical`);
  let failed = 0;
  for (const classifier of classifiers) {
    const { problems, worst } = checkModel(classifier, cases, spec.tolerance.probability);
    failed += problems.length ? 1 : 0;
    mark(log, problems, `${classifier.model}: ${cases.length - problems.length} of ${cases.length} probabilities within ${within} with the same label (max diff ${g2(worst)})`);
  }
  if (!idProblems.length && !failed) log(`* All ${cases.length} cases conform: ids identical, ${models.length} models within ${within} with the same labels`);
  else log(`ERROR ${idProblems.length ? "ids differ; " : ""}${failed} of ${models.length} models do not conform (details above)`);
  return idProblems.length || failed ? 1 : 0;
}

function mark(log, problems, line) {
  log(`  -[${problems.length ? "x" : "\u2713"}] ${line}`);
  for (const problem of problems.slice(0, SHOWN)) log(`        ${problem}`);
  if (problems.length > SHOWN) log(`        ... and ${problems.length - SHOWN} more`);
}

function checkIds(vocabulary, cases) {
  const problems = [];
  for (const one of cases) {
    const ids = vocabulary.encode(one.text);
    const first = ids.length === one.ids.length ? ids.findIndex((id, k) => id !== one.ids[k]) : Math.min(ids.length, one.ids.length);
    if (first >= 0) problems.push(`case ${JSON.stringify(one.name)}: column ${first} is ${ids[first] ?? "missing"}, expected ${one.ids[first] ?? "missing"}`);
  }
  return problems;
}

function checkModel(classifier, cases, tolerance) {
  const problems = [];
  let worst = 0;
  for (const one of cases) {
    const expected = one.probabilities[classifier.model];
    const got = classifier.classify(one.text);
    const diff = Math.abs(got.probability - expected);
    worst = Math.max(worst, diff);
    const label = classifier.labelOf(expected);
    if (!(diff <= tolerance) || got.label !== label) problems.push(`case ${JSON.stringify(one.name)}: probability ${got.probability} (${got.label}), expected ${expected} (${label})`);
  }
  return { problems, worst };
}

/** 1e-05 as "0.00001". */
const decimal = (x) => x.toFixed(Math.max(0, Math.ceil(-Math.log10(x))));

/** Two significant digits, as Java's %.2g: "6.4e-08", "0.0012", "0.0". */
function g2(x) {
  if (x === 0) return "0.0";
  const [mantissa, power] = x.toExponential(1).split("e");
  if (Number(power) >= -4 && Number(power) < 2) return x.toFixed(1 - Number(power));
  return `${mantissa}e${power[0]}${power.slice(1).padStart(2, "0")}`;
}

// ---- --bench --------------------------------------------------------------------------------------------

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

async function bench(classifier, rounds, loadMs) {
  const texts = [];
  for await (const text of messages()) texts.push(text);
  if (!texts.length) throw new InputError("--bench needs messages on standard input, one JSON string per line");
  let sink = 0;
  const start = performance.now();
  do for (const text of texts) sink += classifier.probability(text);
  while (performance.now() - start < WARM_UP_MS);
  const warmUp = (performance.now() - start) / 1000;
  const figures = { p50: [], p90: [], p99: [], bulk: [] };
  for (let round = 0; round < rounds; round++) {
    const times = new Float64Array(texts.length);
    for (let k = 0; k < texts.length; k++) {
      const t0 = process.hrtime.bigint();
      sink += classifier.probability(texts[k]);
      times[k] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    times.sort();
    figures.p50.push(percentile(times, 0.5));
    figures.p90.push(percentile(times, 0.9));
    figures.p99.push(percentile(times, 0.99));
    const t0 = process.hrtime.bigint();
    for (const text of texts) sink += classifier.probability(text);
    figures.bulk.push(texts.length / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  if (Number.isNaN(sink)) throw new Error("a probability was NaN");
  const round2 = (x) => Math.round(x * 100) / 100;
  const result = {
    runtime: `node ${process.versions.node} (V8 ${process.versions.v8})`,
    model: classifier.model,
    kernel: classifier.kernel,
    messages: texts.length,
    rounds,
    load_ms: round2(loadMs),
    warm_up_s: round2(warmUp),
    p50_us: round2(median(figures.p50)),
    p90_us: round2(median(figures.p90)),
    p99_us: round2(median(figures.p99)),
    bulk_msgs_per_s: Math.round(median(figures.bulk)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

// ---- main -----------------------------------------------------------------------------------------------

async function main(argv) {
  const options = parseArgs(argv);
  const start = performance.now();
  const bundle = await Bundle.load(options.bundle);
  if (options.conformance) return conformance(bundle, options.conformance, options.kernel);
  let classifier = await bundle.classifier(options.model, options.kernel);
  if (options.personal !== null) {
    classifier = await withPersonal(classifier, options.personal);
    if (classifier.note) process.stderr.write(`note: ${classifier.note}\n`);
  }
  return options.bench ? bench(classifier, options.rounds, performance.now() - start) : classifyStdin(classifier, options.ids);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof SmsguardError || error instanceof UsageError || error instanceof InputError)) throw error;
  process.stderr.write(`ERROR ${String(error.message).replace(/\s*\n\s*/g, " ")}\n`);
  process.exitCode = 2;
}
