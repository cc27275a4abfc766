// smsguard personal: a user's corrections (`smsguard report`, docs/reference/personal-state.md) applied to a
// Classifier of smsguard.mjs, in the browser and in Node. It reads and applies a state; it never writes one, and never
// fits its weights (without weights fitted for the bundle's vocabulary, the near-duplicate step alone is applied).
//
//   import { withPersonal } from "./personal.mjs";
//   const personal = await withPersonal(classifier, stateJson);   // the object, its JSON text, or (Node) a folder
//   if (personal.note) console.warn(personal.note);
//   personal.classify(text);                                      // {probability, label}, the state applied
import { SmsguardError } from "./smsguard.mjs";

export class PersonalStateError extends SmsguardError {}

const KIND = "smsguard personal state";
const INTEGERS = new Set(["anchors", "iterations", "seed"]); // the learner's integer settings; the others are floats

/** `classifier` with the state applied: `state` a parsed personal.json, its text or bytes, a folder path (Node), or null. */
export async function withPersonal(classifier, state, where = "personal.json") {
  if (typeof state === "string" && !state.trimStart().startsWith("{")) [state, where] = await readFolder(state);
  if (typeof state === "string" || state instanceof Uint8Array) state = parse(state, where);
  const { layer, note } = state ? await layerFor(classifier, checked(state, where), where) : { layer: null, note: "" };
  return new PersonalClassifier(classifier, layer, note);
}

async function readFolder(folder) {
  const { readFile, stat } = await import(/* @vite-ignore */ "node:fs/promises");
  const kind = await stat(folder).then((s) => (s.isDirectory() ? "" : "is not a folder"), () => "does not exist");
  if (kind) throw new PersonalStateError(`personal state folder '${folder}' ${kind}; create it (mkdir) or give another --personal`);
  const where = `${folder.replace(/\/+$/, "")}/personal.json`;
  return readFile(where).then((bytes) => [new Uint8Array(bytes), where], (error) => {
    if (error.code === "ENOENT") return [null, where];
    throw new PersonalStateError(`personal state '${where}' cannot be read: ${error.message}`);
  });
}

function parse(text, where) {
  try {
    return JSON.parse(typeof text === "string" ? text : new TextDecoder("utf-8", { fatal: true }).decode(text));
  } catch (error) {
    throw new PersonalStateError(`personal state '${where}' is not valid JSON (${error.message}); move it away to start afresh`);
  }
}

const uint32 = (b64) => (b64 ? new Uint32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer) : new Uint32Array(0)); // little-endian hosts
const float32 = (b64) => new Float32Array(uint32(b64).buffer);

function checked(state, where) {
  const bad = (what) => new PersonalStateError(`personal state '${where}' is not a state this runtime reads (${what}); move it away to start afresh`);
  if (state?.kind !== KIND || state?.format !== 1) throw bad(`expected '${KIND}' format 1, found kind ${JSON.stringify(state?.kind)} format ${JSON.stringify(state?.format)}`);
  try {
    const ids = uint32(state.bags);
    let at = 0;
    const bags = state.corrections.map((c) => ids.subarray(at, (at += c.size)));
    if (at !== ids.length) throw new Error(`the corrections' sizes add up to ${at} n-gram ids, but 'bags' holds ${ids.length}`);
    const weights = state.weights && { ids: uint32(state.weights.ids), values: float32(state.weights.values), fittedFor: String(state.weights.fitted_for) };
    if (weights && weights.ids.length !== weights.values.length) throw new Error(`${weights.values.length} weights for ${weights.ids.length} ids`);
    return { ...state, bags, weights };
  } catch (error) {
    throw bad(error.message);
  }
}

const describe = (b) => `${b.buckets} buckets, n-grams of ${b.min_n} to ${b.max_n} characters, ${b.length} ids, text spec ${b.text_sha256.slice(0, 12) || "none"}`;

async function layerFor(classifier, state, where) {
  if (!state.corrections.length) return { layer: null, note: "" };
  const file = `personal state '${where}' (${state.corrections.length} corrections)`;
  const { bundle, vocabulary: v } = classifier;
  if (!v.ngrams) return { layer: null, note: `${file} is not applied: this runtime applies a state to a fused bundle (word and n-gram model), and '${bundle.reader.base}' is a word model alone; apply it with the Python runtime` };
  const vocab = JSON.parse(new TextDecoder().decode(await bundle.verifiedBytes(bundle.manifest.vocabulary)));
  const { buckets, minN: min_n, maxN: max_n, length, lower } = v.ngrams;
  const own = { buckets, min_n, max_n, length, lower, text_sha256: await sha256(pythonJson(vocab.text ?? null)) };
  if (Object.keys(own).some((key) => own[key] !== state.bag[key])) {
    return { layer: null, note: `${file} was made for another n-gram bag (${describe(state.bag)}) than this bundle's (${describe(own)}): it is not applied; the next report sets it aside as personal.set-aside-<time>.json and starts a new one` };
  }
  const vocabSha = bundle.manifest.files.find((f) => f.name === bundle.manifest.vocabulary).sha256;
  const learner = Object.keys(state.learner).sort().map((k) => `"${k}": ${INTEGERS.has(k) ? state.learner[k] : pythonFloat(state.learner[k])}`);
  const digest = await sha256(`{${learner.join(", ")}}\n${vocabSha}\n${state.corrections.map((c) => `${c.id}${c.label}`).join(",")}`);
  const fitted = state.weights && state.weights.fittedFor === digest;
  const note = fitted ? "" : `${file} has no weights fitted for this bundle's vocabulary, and this runtime does not fit: only its near-duplicate step is applied; load it once with the Python runtime (\`smsguard predict --bundle BUNDLE --personal DIR TEXT\`) to fit them`;
  return { layer: new Layer(state, fitted ? state.weights : null, classifier), note };
}

async function sha256(text) {
  const subtle = globalThis.crypto?.subtle ?? (await import(/* @vite-ignore */ "node:crypto")).webcrypto.subtle;
  return Array.from(new Uint8Array(await subtle.digest("SHA-256", new TextEncoder().encode(text))), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** JSON as Python's json.dumps(value, sort_keys=True) writes it (a whole number as an int), for the text spec's hash. */
function pythonJson(value) {
  if (value === null) return "null";
  if (typeof value === "boolean" || Number.isInteger(value)) return String(value);
  if (typeof value === "number") return pythonFloat(value);
  if (typeof value === "string") return `"${value.replace(/[^ -~]|["\\]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}"`;
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(", ")}]`;
  const keys = Object.keys(value).sort((a, b) => (codePoints(a) < codePoints(b) ? -1 : 1));
  return `{${keys.map((k) => `${pythonJson(k)}: ${pythonJson(value[k])}`).join(", ")}}`;
}

const ESCAPES = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };
const codePoints = (s) => Array.from(s, (c) => String.fromCodePoint(0x100000 + c.codePointAt(0))).join(""); // sorts by code point

/** Python's repr of a float: "10.0", "0.1", "1e-05", "1.5e+16". */
function pythonFloat(x) {
  const [digits, power] = Math.abs(x).toExponential().split("e");
  const e = Number(power);
  if (x !== 0 && (e < -4 || e >= 16)) return `${x < 0 ? "-" : ""}${digits}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  return Number.isInteger(x) ? `${Object.is(x, -0) ? "-" : ""}${Math.abs(x)}.0` : String(x);
}

/** The four steps of docs/reference/personal-state.md, in float64 as Python computes them (V8's Math.log, log1p and exp are
 * fdlibm's, as Java's StrictMath); a message neither step moves keeps the model's probability bit for bit. */
class Layer {
  constructor(state, weights, classifier) {
    Object.assign(this, { state, weights, maxlen: classifier.vocabulary.maxlen, learner: state.learner });
    this.spam = state.corrections.map((c) => c.label === classifier.labels[1]);
    const t = Math.min(Math.max(classifier.threshold, 1e-7), 1 - 1e-7);
    this.thresholdLogit = Math.log(t) - Math.log1p(-t);
  }

  apply(probability, row) {
    const bag = Int32Array.from(new Set(row.subarray(this.maxlen))).filter((id) => id > 0).sort();
    const p = Math.min(Math.max(Math.fround(probability), 1e-7), 1 - 1e-7); // the model's output as float32, as Python takes it
    const shift = this.shift(bag);
    let z = Math.log(p) - Math.log1p(-p) + shift;
    let [best, closest] = [-1, -1];
    this.state.bags.forEach((other, i) => {
      const similarity = jaccard(bag, other);
      if (similarity >= best) [best, closest] = [similarity, i]; // the latest of equals
    });
    const near = closest >= 0 && best >= this.learner.near;
    const margin = this.learner.near_margin;
    if (near) z = this.spam[closest] ? Math.max(z, this.thresholdLogit + margin) : Math.min(z, this.thresholdLogit - margin);
    return shift !== 0 || near ? Math.fround(1 / (1 + Math.exp(-z))) : probability;
  }

  shift(bag) {
    if (!this.weights) return 0;
    const { ids, values } = this.weights;
    let sum = 0;
    for (const id of bag) {
      let [lo, hi] = [0, ids.length - 1];
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ids[mid] < id) lo = mid + 1;
        else hi = mid;
      }
      if (ids[lo] === id) sum += values[lo];
    }
    const raw = sum * (1 / Math.sqrt(Math.max(bag.length, 1)));
    const { dead_zone: d, anchor_margin: m } = this.learner;
    return raw > d ? raw - d : raw < -(d + m) ? raw + (d + m) : 0;
  }
}

function jaccard(a, b) {
  let common = 0;
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    if (a[i] === b[j]) [common, i, j] = [common + 1, i + 1, j + 1];
    else if (a[i] < b[j]) i++;
    else j++;
  }
  return common === 0 ? 0 : common / (a.length + b.length - common);
}

/** A Classifier with the state applied: probability, classify, labelOf as the Classifier's; `note`: "" or why the state is not (wholly) applied. */
export class PersonalClassifier {
  constructor(classifier, layer, note) {
    Object.assign(this, { classifier, layer, note, model: classifier.model, labels: classifier.labels, threshold: classifier.threshold });
  }

  /** {probability, modelProbability}: the state applied, and the model's before it. */
  scores(text) {
    const row = this.classifier.encode(text);
    const modelProbability = this.classifier.lstm.probability(row);
    return { probability: this.layer ? this.layer.apply(modelProbability, row) : modelProbability, modelProbability };
  }

  encode(text) {
    return this.classifier.encode(text);
  }

  probability(text) {
    return this.scores(text).probability;
  }

  classify(text) {
    const probability = this.probability(text);
    return { probability, label: this.labelOf(probability) };
  }

  labelOf(probability) {
    return this.classifier.labelOf(probability);
  }
}
