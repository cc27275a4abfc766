// smsguard.mjs: the JavaScript runtime of an smsguard bundle, for browsers and Node >= 18; no dependency, no build.
// It reads a bundle (over fetch from a base URL, from a folder in Node, or through a reader of yours), checks each
// file it uses against the SHA-256 in manifest.json, encodes a message exactly as the Python runtime does
// (vocab.json format 2) and runs the fused model on the bundle's .npz weights.
//
//   import { Classifier } from "./smsguard.mjs";
//   const classifier = await Classifier.load("/bundle/");   // a base URL, or a folder path in Node
//   classifier.classify("WINNER!! Claim your prize")        // {probability: 0.99.., label: "spam"}
//   classifier.encode("...")                                 // Int32Array: the model input (for LiteRT.js and the .tflite)

export const VOCAB_FORMAT = 2; // vocab.json
const TEXT_FORMAT = 1; // its `text` section
const NGRAM_FORMAT = 1; // its `ngrams` section
const NPZ_FORMATS = [1, 2]; // the .npz model's `meta`; 2: the compact form, its table folded at load
const MANIFEST_MAJOR = 1; // manifest.json's format_version
const MANIFEST = "manifest.json";
const NGRAM_CONSTANTS = { hash: "crc32", encoding: "utf-8", encoding_errors: "surrogatepass", wrap: ["<", ">"], order: "word, start, n" };
const STAMPED_BUCKETS = 1 << 22; // up to this many buckets, "seen" is a stamped array; past it, a Set

/** Any refusal of this module. */
export class SmsguardError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}
/** A bundle that is missing, malformed, of a format this runtime does not read, or not a model it runs. */
export class BundleError extends SmsguardError {}
/** A bundle file whose bytes are not those its manifest pins (changed, truncated, replaced). */
export class IntegrityError extends BundleError {}

const fail = (message) => {
  throw new BundleError(message);
};
const json = (value) => JSON.stringify(value);

function describe(value) {
  if (value === null || Array.isArray(value)) return value === null ? "null" : "an array";
  const name = typeof value === "object" ? value.constructor?.name ?? "Object" : "";
  return name ? `${/^[AEIOU]/.test(name) ? "an" : "a"} ${name}` : typeof value;
}

// ---- reading a bundle ----

const isNode = typeof process === "object" && typeof process?.versions?.node === "string";
const nodeImport = (name) => import(/* @vite-ignore */ /* webpackIgnore: true */ name); // out of bundlers' graphs

// A reader of a bundle's files by name: {base, where(name), read(name) -> Uint8Array}.
function bundleReader(source, fetchImpl) {
  if (typeof source === "function") return { base: "the bundle", where: (name) => name, read: async (name) => asBytes(await source(name), name) };
  const text = source instanceof URL ? source.href : source;
  if (typeof text !== "string" || !text) throw new TypeError(`bundle must be a URL, a folder path or a reader function, found ${describe(source)}`);
  const urlLike = /^[a-z][a-z0-9+.-]*:/i.test(text) && !/^[a-z]:[\\/]/i.test(text); // a Windows drive is a path
  if (isNode && (!urlLike || text.startsWith("file:"))) return folderReader(text.startsWith("file:") ? decodeURIComponent(new URL(text).pathname) : text);
  const base = new URL(text.endsWith("/") ? text : `${text}/`, globalThis.document?.baseURI).href;
  const where = (name) => new URL(name, base).href;
  return {
    base,
    where,
    read: async (name) => {
      let response;
      try {
        response = await (fetchImpl ?? globalThis.fetch)(where(name));
      } catch (error) {
        fail(`bundle file '${where(name)}' could not be fetched: ${error.message}`);
      }
      if (!response.ok) fail(`bundle file '${where(name)}' could not be fetched: HTTP ${response.status} ${response.statusText}`.trimEnd());
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

function folderReader(path) {
  const base = path.replace(/[\\/]+$/, "") || "/";
  const where = (name) => `${base}/${name}`;
  const read = async (name) => {
    const fs = await nodeImport("node:fs/promises");
    try {
      return new Uint8Array(await fs.readFile(where(name)));
    } catch (error) {
      if (error.code !== "ENOENT") fail(`bundle file '${where(name)}' cannot be read: ${error.message}`);
      const folder = await fs.stat(base).then((s) => s.isDirectory(), () => null);
      if (!folder) fail(`bundle '${base}' ${folder === null ? "does not exist" : "is not a folder"}; create one with \`smsguard export RUN_DIR --out ${base}\``);
      return fail(`bundle file '${where(name)}' is missing; re-export the bundle or copy the whole folder`);
    }
  };
  return { base, where, read };
}

function asBytes(data, name) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`the bundle reader must give a Uint8Array or an ArrayBuffer for '${name}', found ${describe(data)}`);
}

async function sha256(bytes) {
  let subtle = globalThis.crypto?.subtle;
  if (!subtle && isNode) subtle = (await nodeImport("node:crypto")).webcrypto.subtle; // Node 18 has no global
  if (!subtle) fail("crypto.subtle is missing, so the bundle's hashes cannot be checked: serve the page over https or from localhost (a secure context)");
  return Array.from(new Uint8Array(await subtle.digest("SHA-256", bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function parseJson(bytes, where, what) {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    return fail(`${what} '${where}' is not valid JSON (${error.message}); re-export the bundle`);
  }
}

function checkManifest(manifest, where) {
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) fail(`manifest '${where}' is not a JSON object; re-export the bundle`);
  const major = Number.parseInt(String(manifest.format_version).split(".")[0], 10);
  if (Number.isNaN(major)) fail(`manifest '${where}' has no valid format_version (found ${json(manifest.format_version)}); re-export the bundle`);
  if (major > MANIFEST_MAJOR) fail(`manifest '${where}' has format ${manifest.format_version}, written by smsguard ${manifest.smsguard_version}; this smsguard.mjs reads format ${MANIFEST_MAJOR}.x: use the smsguard.mjs of that smsguard`);
  const fine = Array.isArray(manifest.files) && manifest.files.every((f) => typeof f?.name === "string" && /^[0-9a-f]{64}$/.test(f.sha256))
    && manifest.labels?.length === 2 && typeof manifest.threshold === "number" && typeof manifest.vocabulary === "string";
  if (!fine) fail(`manifest '${where}' is malformed: expected files (name, sha256), labels, threshold and vocabulary; re-export the bundle`);
  return manifest;
}

/** A bundle: its manifest and vocabulary, read and checked; `classifier(name)` loads one of its models. */
export class Bundle {
  constructor(reader, manifest, manifestSha256) {
    Object.assign(this, { reader, manifest, manifestSha256, vocabulary: null });
  }

  /** Read and check a bundle: `source` is a base URL, a folder path (Node) or an async function name => bytes. */
  static async load(source, options = {}) {
    const reader = bundleReader(source, options.fetch);
    const raw = await reader.read(MANIFEST);
    const bundle = new Bundle(reader, checkManifest(parseJson(raw, reader.where(MANIFEST), "manifest"), reader.where(MANIFEST)), await sha256(raw));
    const where = reader.where(bundle.manifest.vocabulary);
    const data = parseJson(await bundle.verifiedBytes(bundle.manifest.vocabulary), where, "vocabulary");
    try {
      bundle.vocabulary = new Vocabulary(data);
    } catch (error) {
      if (error instanceof BundleError) fail(`'${where}': ${error.message}`);
      throw error;
    }
    return bundle;
  }

  /** The bytes of a file the manifest lists, refused (IntegrityError) unless they hash to its sha256. */
  async verifiedBytes(name) {
    const entry = this.manifest.files.find((file) => file.name === name);
    if (!entry) fail(`manifest '${this.reader.where(MANIFEST)}' does not list '${name}'; it lists: ${this.manifest.files.map((f) => f.name).join(", ")}`);
    if (/[\\/]/.test(name) || name === "..") fail(`manifest names file '${name}' outside its bundle`);
    const bytes = await this.reader.read(name);
    const actual = await sha256(bytes);
    if (actual !== entry.sha256) {
      throw new IntegrityError(`bundle file '${this.reader.where(name)}' does not match its manifest: expected sha256 ${entry.sha256}, found ${actual} `
        + `(${bytes.length} bytes, expected ${entry.size}); the file was changed or truncated, re-export the bundle or copy it again`);
    }
    return bytes;
  }

  /** The .npz models this runtime runs, the recommended one first. */
  get models() {
    const names = this.manifest.files.filter((f) => f.kind === "model" && f.name.endsWith(".npz")).map((f) => f.name);
    const best = this.manifest.recommended?.npz;
    return names.includes(best) ? [best, ...names.filter((n) => n !== best)] : names;
  }

  /** The threshold a model is used at: its own when the manifest gives one, else the bundle's. */
  thresholdOf(name) {
    const own = this.manifest.files.find((f) => f.name === name)?.threshold;
    return typeof own === "number" ? own : this.manifest.threshold;
  }

  /** A classifier on model `name` (default: the recommended .npz), its file checked; `kernel`: see LstmModel. */
  async classifier(name = this.manifest.recommended?.npz, kernel = "auto") {
    const have = this.models.join(", ") || "(none)";
    if (!name || !this.models.includes(name)) {
      const { pack } = this.manifest;
      const left = pack?.left_out?.filter((e) => e.format === "npz") ?? [];
      const args = (e) => (e.targets?.includes("web") ? "--for web" : e.pack);
      const held = (e) => (args(e) ? `\`smsguard pack BUNDLE ${args(e)}\` makes a pack that holds it` : "only the full bundle holds it");
      const named = left.find((e) => e.name === name);
      if (named) fail(`bundle '${this.reader.base}' is packed for ${pack.target} and does not hold model '${name}' of its full bundle; ${held(named)}`);
      const web = left.find((e) => e.targets?.includes("web")) ?? left[0];
      const hint = pack ? `; it is packed for ${pack.target} (${pack.runs_in})${web ? `; its full bundle's ${web.name} is left out, and ${held(web)}` : ""}` : "";
      fail(`bundle '${this.reader.base}' ${name ? `has no .npz model '${name}'` : "recommends no .npz model"}; it has: ${have}${hint}`);
    }
    const where = this.reader.where(name);
    const model = LstmModel.fromArrays(await readNpz(await this.verifiedBytes(name), where), where, kernel);
    const v = this.vocabulary;
    if (model.maxlen !== v.maxlen || model.ngramLength !== v.ngramLength || model.rows < v.rows || (v.ngrams && model.ngramScores.length <= v.ngrams.buckets) || v.padding !== "pre") {
      fail(`'${where}' does not fit the bundle's vocabulary: it takes ${model.maxlen} front-padded word ids (${model.rows} rows) and ${model.ngramLength} n-gram ids, the vocabulary gives ${v.maxlen} ${v.padding}-padded (${v.rows}) and ${v.ngramLength}`);
    }
    return new Classifier(this, name, model);
  }
}

// ---- the classifier ----

/** One model of a bundle, with its vocabulary. It reuses its buffers from call to call: one per thread (worker). */
export class Classifier {
  constructor(bundle, name, model) {
    Object.assign(this, { bundle, model: name, vocabulary: bundle.vocabulary, lstm: model, kernel: model.kernel.name });
    this.threshold = bundle.thresholdOf(name);
    this.labels = [...bundle.manifest.labels];
    this.serial = bundle.manifest.serial;
    this.row = new Int32Array(this.vocabulary.width);
  }

  /** A classifier on a bundle's model: options {model (default: the recommended .npz), kernel, fetch}. */
  static async load(source, options = {}) {
    return (await Bundle.load(source, options)).classifier(options.model, options.kernel);
  }

  /** The model input of `text`: `width` int32 ids (the word ids, then the n-gram ids), as the .tflite models take it. */
  encode(text) {
    return this.vocabulary.encode(text);
  }

  /** The probability that `text` is labels[1] ("spam"). */
  probability(text) {
    this.row.fill(0);
    return this.lstm.probability(this.vocabulary.encode(text, this.row));
  }

  /** {probability, label}, the label at the model's threshold. */
  classify(text) {
    const probability = this.probability(text);
    return { probability, label: this.labelOf(probability) };
  }

  // The contract's rule, compared in float32 (what every model outputs and every threshold is chosen in), so that a
  // probability at the threshold is positive in every runtime.
  labelOf(probability) {
    return this.labels[Math.fround(probability) >= Math.fround(this.threshold) ? 1 : 0];
  }
}

// ---- text: code points, the pinned lowercase, normalise ----

/** The code points of `text` into `out` (an array); an unpaired surrogate is a code point, as in Python. A JSON
 * string reads an escaped surrogate pair as one character in Python and JS alike, so vocab.json agrees too. */
function codePoints(text, out = []) {
  out.length = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const d = c >= 0xd800 && c <= 0xdbff ? text.charCodeAt(i + 1) : 0;
    if (d >= 0xdc00 && d <= 0xdfff) {
      out.push(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00));
      i++;
    } else {
      out.push(c);
    }
  }
  return out;
}

/** {"hex code point": "replacement"} as a Map code point -> code point (or an array of them). */
function codeMap(object, what) {
  if (object === null || typeof object !== "object") fail(`${what} must be a JSON object of code points`);
  const map = new Map();
  for (const [key, value] of Object.entries(object)) {
    if (!/^[0-9a-f]{1,6}$/.test(key) || typeof value !== "string") fail(`${what} has an entry ${json(key)}: expected a lowercase hex code point and a string`);
    const to = codePoints(value);
    map.set(Number.parseInt(key, 16), to.length === 1 ? to[0] : to);
  }
  return map;
}

function pushMapped(out, map, c) {
  const to = map.get(c);
  if (to === undefined) out.push(c);
  else if (typeof to === "number") out.push(to);
  else for (let k = 0; k < to.length; k++) out.push(to[k]);
}

/** A set of code points: inclusive [first, last] ranges, a table below 0x10000 and a binary search above. */
class CodeSet {
  static of(codes) {
    return new CodeSet([...new Set(codes)].sort((a, b) => a - b).map((c) => [c, c]), "");
  }

  constructor(ranges, what) {
    const valid = Array.isArray(ranges) && ranges.every((r) => r?.length === 2 && Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] <= r[1]);
    if (!valid) fail(`${what} must be a list of [first, last] code point ranges`);
    const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
    this.firsts = sorted.map((r) => r[0]);
    this.lasts = sorted.map((r) => r[1]);
    this.low = new Uint8Array(0x10000);
    for (const [first, last] of sorted) if (first < 0x10000) this.low.fill(1, first, Math.min(last, 0xffff) + 1);
  }

  has(c) {
    if (c < 0x10000) return this.low[c] === 1;
    for (let lo = 0, hi = this.firsts.length - 1; lo <= hi; ) {
      const mid = (lo + hi) >> 1;
      if (c < this.firsts[mid]) hi = mid - 1;
      else if (c > this.lasts[mid]) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

const isLetter = (c) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isAlnum = (c) => isLetter(c) || (c >= 0x30 && c <= 0x39);

/** The `text` section: the pinned lowercase (never the platform's: every runtime gives the same ids) and normalise. */
class TextRules {
  constructor(section, whitespace) {
    if (section === null || typeof section !== "object") fail("vocabulary has no `text` section; re-export the bundle");
    if (section.format !== TEXT_FORMAT) fail(`vocabulary text section format ${json(section.format)} is not supported (this smsguard.mjs reads ${TEXT_FORMAT})`);
    const lower = section.lowercase ?? fail("vocabulary text section has no `lowercase`");
    this.lowerMap = codeMap(lower.map, "text.lowercase.map");
    this.cased = new CodeSet(lower.final_sigma?.cased, "text.lowercase.final_sigma.cased");
    this.ignorable = new CodeSet(lower.final_sigma?.case_ignorable, "text.lowercase.final_sigma.case_ignorable");
    this.ascii = Int32Array.from({ length: 128 }, (_, c) => (this.lowerMap.has(c) ? (typeof this.lowerMap.get(c) === "number" ? this.lowerMap.get(c) : -1) : c));
    this.normalise = section.normalise ? new Normaliser(section.normalise, whitespace) : null;
  }

  /** lowercase(src) into `out` (emptied first). */
  lowercase(src, out) {
    out.length = 0;
    for (let i = 0; i < src.length; i++) {
      const c = src[i];
      if (c < 128 && this.ascii[c] >= 0) out.push(this.ascii[c]);
      else if (c === 0x3a3) out.push(this.finalSigma(src, i) ? 0x3c2 : 0x3c3);
      else pushMapped(out, this.lowerMap, c);
    }
    return out;
  }

  // CPython's handle_capital_sigma: a cased letter before Σ (skipping case-ignorables), and none after.
  finalSigma(src, i) {
    let j = i - 1;
    while (j >= 0 && this.ignorable.has(src[j])) j--;
    if (j < 0 || !this.cased.has(src[j])) return false;
    for (j = i + 1; j < src.length && this.ignorable.has(src[j]); ) j++;
    return j === src.length || !this.cased.has(src[j]);
  }
}

/** normalise(s): remove, fold, lookalikes (in words with an ASCII letter), then join letters spaced apart. */
class Normaliser {
  constructor(section, whitespace) {
    this.remove = new CodeSet(section.remove, "text.normalise.remove");
    this.fold = codeMap(section.fold, "text.normalise.fold");
    this.lookalikes = codeMap(section.lookalikes, "text.normalise.lookalikes");
    this.whitespace = whitespace;
    const { min_letters: letters, separators, max_separator_run: run } = section.join ?? {};
    if (!(letters >= 1 && run >= 1 && Number.isInteger(letters + run) && typeof separators === "string" && separators)) fail("text.normalise.join must give min_letters >= 1, max_separator_run >= 1 and separators");
    // The spec's regular expression runs on a stand-in string of one UTF-16 unit per code point (so its indices
    // are code point indices): letters and digits as they are, a separator as itself (a private-use stand-in
    // when outside the BMP), anything else as a character that is neither.
    const seps = [...new Set(codePoints(separators))];
    this.standIn = new Map(seps.map((c, k) => [c, c < 0xd800 || (c > 0xdfff && c < 0x10000) ? c : 0xe000 + k]));
    const used = [...this.standIn.values()];
    this.other = [0xffff, 0xfffe].find((c) => !used.includes(c));
    const klass = used.map((c) => String.fromCharCode(c).replace(/[\\\]^-]/, "\\$&")).join("");
    this.join = new RegExp(`(?<![A-Za-z0-9])[A-Za-z0-9](?:[${klass}]{1,${run}}[A-Za-z0-9]){${letters - 1},}(?![A-Za-z0-9])`, "g");
    this.folded = [];
    // ASCII text (most SMS) skips the first three steps when no table holds an ASCII code point, as in Python.
    this.asciiFast = !this.remove.low.subarray(0, 128).includes(1) && ![...this.fold.keys(), ...this.lookalikes.keys()].some((c) => c < 128);
  }

  /** normalise(src) into `out` (emptied first), or src itself when nothing changes it. */
  apply(src, out) {
    const folded = this.folded;
    folded.length = 0;
    for (let i = 0; i < src.length; i++) if (!this.remove.has(src[i])) pushMapped(folded, this.fold, src[i]);
    out.length = 0;
    for (let i = 0; i < folded.length; ) {
      let end = i;
      let ascii = false;
      while (end < folded.length && !this.whitespace.has(folded[end])) ascii = isLetter(folded[end++]) || ascii;
      for (; i < end; i++) {
        if (ascii) pushMapped(out, this.lookalikes, folded[i]);
        else out.push(folded[i]);
      }
      if (i < folded.length) out.push(folded[i++]); // a whitespace
    }
    return this.joinLetters(out);
  }

  joinLetters(src) {
    let stand = "";
    const chunk = [];
    for (let i = 0; i < src.length; i++) {
      chunk.push(isAlnum(src[i]) ? src[i] : this.standIn.get(src[i]) ?? this.other);
      if (chunk.length === 8192 || i === src.length - 1) {
        stand += String.fromCharCode.apply(null, chunk);
        chunk.length = 0;
      }
    }
    const matches = [...stand.matchAll(this.join)];
    if (!matches.length) return src;
    const out = [];
    let done = 0;
    for (const match of matches) {
      for (let i = done; i < match.index; i++) out.push(src[i]);
      done = match.index + match[0].length;
      for (let i = match.index; i < done; i++) if (isAlnum(src[i])) out.push(src[i]);
    }
    for (let i = done; i < src.length; i++) out.push(src[i]);
    return out;
  }
}

// ---- the vocabulary: word ids (Keras Tokenizer) and the n-gram bag ----

// Python's str.split() whitespace; vocab.json lists it (ngrams.whitespace) when there is a bag.
const WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";

/** vocab.json (format 2): `encode(text)` gives the model input, `width` int32 ids. */
export class Vocabulary {
  constructor(data) {
    if (data?.format === 1) fail("vocabulary format 1 is not supported by this runtime: re-export the bundle with smsguard >= 0.2");
    if (data?.format !== VOCAB_FORMAT) fail(`vocabulary format ${json(data?.format)} is not supported (this smsguard.mjs reads ${VOCAB_FORMAT})`);
    const { tokenizer: t, sequence: s, word_index: index, ngrams } = data;
    if (!t || !s || !index || typeof index !== "object") fail("vocabulary is malformed: expected tokenizer, sequence and word_index");
    Object.assign(this, { lower: t.lower === true, filters: CodeSet.of(codePoints(String(t.filters ?? ""))), split: codePoints(String(t.split ?? "")) });
    Object.assign(this, { numWords: t.num_words ?? null, maxlen: s.maxlen, padding: s.padding, truncating: s.truncating });
    if (!this.split.length) fail("vocabulary is malformed: tokenizer.split must be a non-empty string");
    if (!Number.isInteger(this.maxlen) || this.maxlen < 1) fail(`vocabulary is malformed: sequence.maxlen must be a positive integer, found ${json(this.maxlen)}`);
    for (const side of ["padding", "truncating"]) if (!["pre", "post"].includes(this[side])) fail(`vocabulary is malformed: ${side} must be 'pre' or 'post', found ${json(this[side])}`);
    this.words = new Map();
    let largest = 0;
    for (const [word, id] of Object.entries(index)) {
      if (!Number.isInteger(id) || id < 1) fail("vocabulary is malformed: word_index must map words to positive integer ids");
      largest = Math.max(largest, id);
      if (this.numWords === null || id < this.numWords) this.words.set(word, id);
    }
    this.rows = this.numWords ?? largest + 1; // the embedding rows a model needs
    this.longest = Math.max(0, ...Array.from(this.words.keys(), (word) => word.length)); // a longer word is unknown
    this.oov = t.oov_token != null && Object.hasOwn(index, t.oov_token) ? index[t.oov_token] : null;
    this.ngrams = ngrams ? new NgramRules(ngrams) : null;
    this.ngramLength = this.ngrams?.length ?? 0;
    this.whitespace = CodeSet.of(codePoints(ngrams ? String(ngrams.whitespace) : WHITESPACE));
    this.text = new TextRules(data.text, this.whitespace);
    this.width = this.maxlen + this.ngramLength;
    Object.assign(this, { points: [], normal: [], lowered: [], ids: [] }); // reused from call to call
  }

  /** The model input of `text`: an Int32Array of `width` ids (into `out` when given: it must hold zeros). */
  encode(text, out = new Int32Array(this.width)) {
    if (typeof text !== "string") throw new TypeError(`text must be a string, found ${describe(text)}`);
    const n = this.text.normalise;
    // ASCII text (most SMS) that normalise can only join: the joins as a string, and the words sliced from it.
    let plain = /^[\0-\x7f]*$/.test(text) && (!n || n.asciiFast) ? text : null;
    if (plain && n) plain = plain.replace(n.join, (m) => m.replace(/[^A-Za-z0-9]/g, ""));
    let src = codePoints(plain ?? text, this.points);
    if (n && !plain) src = n.apply(src, this.normal);
    const lowered = this.lower || this.ngrams?.lower ? this.text.lowercase(src, this.lowered) : null;
    this.wordIds(this.lower ? lowered : src, out, this.lower ? null : plain);
    if (this.ngrams) this.ngrams.ids(this.ngrams.lower ? lowered : src, this.whitespace, out, this.maxlen);
    return out;
  }

  /** Keras: filters become `split`, split on `split`, drop empty words, look each up; then truncate and pad. */
  wordIds(src, out, str) {
    const { ids, split, maxlen } = this;
    ids.length = 0;
    const keepFirst = this.truncating === "post";
    if (split.length > 1) (src = src.flatMap((c) => (this.filters.has(c) ? split : [c]))), (str = null); // then Python splits that
    for (let i = 0, start = 0; i <= src.length; i++) {
      let cut = i === src.length ? 1 : 0;
      if (!cut && split.length === 1) cut = src[i] === split[0] || this.filters.has(src[i]) ? 1 : 0;
      else if (!cut) cut = split.every((c, k) => src[i + k] === c) ? split.length : 0;
      if (!cut) continue;
      const [from, to] = [start, i];
      start = i + cut;
      i = start - 1;
      if (from === to) continue;
      const id = to - from > this.longest ? undefined : this.words.get(str ? str.slice(from, to) : wordKey(src, from, to)); // past the longest key: unknown
      if (id !== undefined) ids.push(id);
      else if (this.oov !== null) ids.push(this.oov);
      if (keepFirst && ids.length >= maxlen) break;
    }
    const n = Math.min(ids.length, maxlen);
    for (let k = 0, from = keepFirst ? 0 : ids.length - n, to = this.padding === "pre" ? maxlen - n : 0; k < n; k++) out[to + k] = ids[from + k];
  }
}

/** A word as the string its vocab.json key would be, or null when no key can be it: a high surrogate then a low
 * one are two code points in Python, but JSON, in both languages, reads such a key as the character they pair into. */
function wordKey(src, from, to) {
  let key = "";
  for (let k = from; k < to; k++) {
    const c = src[k];
    if (c >= 0xdc00 && c <= 0xdfff && k > from && src[k - 1] >= 0xd800 && src[k - 1] <= 0xdbff) return null;
    key += c < 0x10000 ? String.fromCharCode(c) : String.fromCodePoint(c);
  }
  return key;
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n;
});

/** The hashed character n-grams (the bag): up to `length` distinct ids, crc32 of each gram's UTF-8 (surrogatepass). */
class NgramRules {
  constructor(spec) {
    if (spec.format !== NGRAM_FORMAT) fail(`n-gram bag format ${json(spec.format)} is not supported (this smsguard.mjs reads ${NGRAM_FORMAT})`);
    for (const [name, value] of Object.entries(NGRAM_CONSTANTS)) if (json(spec[name]) !== json(value)) fail(`n-gram bag field '${name}' is ${json(spec[name])}, this smsguard.mjs computes ${json(value)}`);
    const { buckets, min_n: minN, max_n: maxN, length, lower } = spec;
    const ok = Number.isInteger(buckets) && buckets >= 1 && buckets <= 2 ** 31 - 2 && Number.isInteger(minN + maxN + length)
      && minN >= 1 && minN <= maxN && maxN <= 16 && length >= 1 && typeof lower === "boolean" && typeof spec.whitespace === "string";
    if (!ok) fail("n-gram bag is malformed: expected buckets, 1 <= min_n <= max_n <= 16, length and lower");
    Object.assign(this, { buckets, minN, maxN, length, lower, stamp: 0, wrapped: new Int32Array(64), high: 2 ** 31 % buckets });
    this.stamps = buckets <= STAMPED_BUCKETS ? new Uint16Array(buckets + 1) : null;
  }

  /** The n-gram ids of src into out[at..at+length) (then zeros: `out` holds zeros). */
  ids(src, whitespace, out, at) {
    if (this.stamps && ++this.stamp === 0xffff) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
    const seen = this.stamps ? this.stamp : new Set();
    let count = 0;
    for (let i = 0, end = 0; i < src.length && count < this.length; i = end) {
      while (i < src.length && whitespace.has(src[i])) i++;
      for (end = i; end < src.length && !whitespace.has(src[end]); ) end++;
      if (end > i) count = this.wordIds(src, i, end, seen, out, at, count);
    }
  }

  // Every gram of "<" + word + ">": each start, n = min_n..max_n, one running CRC a start.
  wordIds(src, from, to, seen, out, at, count) {
    const size = to - from + 2;
    if (this.wrapped.length < size) this.wrapped = new Int32Array(size * 2);
    const { wrapped: w, minN, maxN, buckets, length, stamps, high } = this;
    w[0] = 0x3c;
    for (let k = from; k < to; k++) w[k - from + 1] = src[k];
    w[size - 1] = 0x3e;
    for (let s = 0; s < size; s++) {
      let crc = -1;
      for (let e = s, last = Math.min(size, s + maxN); e < last; e++) {
        const c = w[e];
        crc = c < 0x80 ? CRC_TABLE[(crc ^ c) & 0xff] ^ (crc >>> 8) : crcCodePoint(crc, c);
        if (e - s + 1 < minN) continue;
        let id = (~crc & 0x7fffffff) % buckets; // (~crc >>> 0) % buckets in int32 arithmetic (a double's % is slow)
        if (crc >= 0) id -= id < buckets - high ? -high : buckets - high;
        id++;
        if (stamps ? stamps[id] === seen : seen.has(id)) continue;
        if (stamps) stamps[id] = seen;
        else seen.add(id);
        out[at + count++] = id;
        if (count === length) return count;
      }
    }
    return count;
  }
}

/** The CRC register after the UTF-8 bytes of code point c (a lone surrogate as its 3 bytes: surrogatepass). */
function crcCodePoint(crc, c) {
  const byte = (r, b) => CRC_TABLE[(r ^ b) & 0xff] ^ (r >>> 8);
  const tail = (r, shift) => byte(r, 0x80 | ((c >> shift) & 0x3f));
  if (c < 0x800) return tail(byte(crc, 0xc0 | (c >> 6)), 0);
  if (c < 0x10000) return tail(tail(byte(crc, 0xe0 | (c >> 12)), 6), 0);
  return tail(tail(tail(byte(crc, 0xf0 | (c >> 18)), 12), 6), 0);
}

// ---- .npz and .npy ----

/** The arrays of an .npz (a zip of .npy files, stored or deflated), by name without ".npy". */
export async function readNpz(bytes, where = "the .npz file") {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at) => view.getUint16(at, true);
  const u32 = (at) => view.getUint32(at, true);
  let end = bytes.length - 22;
  while (end >= Math.max(0, bytes.length - 22 - 0xffff) && u32(end) !== 0x06054b50) end--;
  if (end < 0 || u32(end) !== 0x06054b50) fail(`'${where}' is not an .npz file: no zip directory found`);
  const arrays = {};
  for (let k = 0, at = u32(end + 16); k < u16(end + 10); k++) {
    if (at + 46 > bytes.length || u32(at) !== 0x02014b50) fail(`'${where}' is not an .npz file: its zip directory is damaged`);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + u16(at + 28)));
    const [method, packed, size, local] = [u16(at + 10), u32(at + 20), u32(at + 24), u32(at + 42)];
    if ([packed, size, local].includes(0xffffffff)) fail(`'${where}' entry '${name}' needs zip64 (over 4 GB): not supported`);
    if (local + 30 > bytes.length || u32(local) !== 0x04034b50) fail(`'${where}' is not an .npz file: entry '${name}' is damaged`);
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    if (start + packed > bytes.length) fail(`'${where}' is truncated: entry '${name}' runs past its end`);
    let data = bytes.subarray(start, start + packed);
    if (method === 8) data = await inflateRaw(data, `'${where}' entry '${name}'`);
    else if (method !== 0) fail(`'${where}' entry '${name}' uses zip compression method ${method}; save the model with np.savez or np.savez_compressed`);
    if (data.length !== size) fail(`'${where}' entry '${name}' has ${data.length} bytes, expected ${size}`);
    if (name.endsWith(".npy")) arrays[name.slice(0, -4)] = parseNpy(data, `${where}:${name}`);
    at += 46 + u16(at + 28) + u16(at + 30) + u16(at + 32);
  }
  return arrays;
}

async function inflateRaw(packed, what) {
  let stream = null;
  try {
    stream = new DecompressionStream("deflate-raw");
  } catch {
    if (isNode) return new Uint8Array((await nodeImport("node:zlib")).inflateRawSync(packed));
    fail(`${what} is deflated and this browser has no DecompressionStream('deflate-raw'); save the model with np.savez (uncompressed)`);
  }
  return new Uint8Array(await new Response(new Blob([packed]).stream().pipeThrough(stream)).arrayBuffer());
}

const DTYPES = { "<f4": Float32Array, "<f8": Float64Array, "|i1": Int8Array, "|u1": Uint8Array, "<i4": Int32Array };

/** One .npy array: {dtype, shape, data}: data a typed array (copied, so aligned), or a string for a '<U' scalar. */
export function parseNpy(bytes, where = "the .npy file") {
  if (String.fromCharCode(...bytes.subarray(0, 6)) !== "\x93NUMPY") fail(`'${where}' is not an .npy array: no NUMPY magic`);
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) fail("this machine is big-endian: smsguard.mjs reads .npy data as little-endian only");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const from = bytes[6] === 1 ? 10 : 12;
  const start = from + (bytes[6] === 1 ? view.getUint16(8, true) : view.getUint32(8, true));
  const header = new TextDecoder().decode(bytes.subarray(from, start));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || shapeText === undefined) fail(`'${where}' has an .npy header this runtime cannot read: ${header.trim()}`);
  const shape = shapeText.split(",").filter((s) => s.trim()).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (/'fortran_order':\s*True/.test(header) && shape.length > 1) fail(`'${where}' is stored in Fortran order; save it C-contiguous`);
  const chars = /^<U(\d+)$/.exec(descr);
  const Type = chars ? Uint32Array : DTYPES[descr] ?? fail(`'${where}' holds dtype '${descr}', which smsguard.mjs does not read`);
  const length = count * (chars ? Number(chars[1]) : 1);
  if (bytes.length - start < length * Type.BYTES_PER_ELEMENT) fail(`'${where}' is truncated: expected ${length} values of ${descr}`);
  const data = new Type(bytes.slice(start, start + length * Type.BYTES_PER_ELEMENT).buffer);
  if (!chars) return { dtype: descr, shape, data };
  const end = data.indexOf(0);
  return { dtype: descr, shape, data: String.fromCodePoint(...data.subarray(0, end < 0 ? length : end)) };
}

// ---- the model ----

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/** The folded LSTM of an .npz, and a fused model's n-gram branch: the Python runtime's steps. A message with L word
 * ids starts from the state after maxlen - L pads (`primed_h`, `primed_c`) and steps through its ids: z = table[id]
 * + h R, gates i, f, c, o; i, f, o halved at load so that one tanh gives every gate (sigmoid(x) = 0.5 + 0.5 tanh(x/2)).
 * `kernel`: "auto" runs a step in WebAssembly SIMD (float32, as the native kernel) where the platform allows it,
 * else in plain JS (float64); "wasm" or "js" insist on one. */
export class LstmModel {
  static fromArrays(arrays, where, kernel = "auto") {
    const need = (name, optional = false) => arrays[name] ?? (optional ? null : fail(`'${where}' is not an smsguard model: it has no '${name}' array`));
    let meta = null;
    try {
      meta = JSON.parse(need("meta").data);
    } catch {
      // below
    }
    if (!NPZ_FORMATS.includes(meta?.format) || meta.gates !== "ifco" || meta.activation !== "tanh") fail(`'${where}' is an LSTM weights file this runtime cannot run: ${json(meta)}`);
    return new LstmModel(need, meta, where, kernel);
  }

  constructor(need, meta, where, kernel) {
    const recurrent = need("recurrent");
    const [u, maxlen] = [recurrent.shape[0], meta.maxlen];
    const scale = need("table_q", true) && need("table_scale").data;
    const table = meta.format === 2 ? compactTable(need, where) : need(scale ? "table_q" : "table");
    Object.assign(this, { units: u, maxlen, rows: table.shape[0], table: table.data, fold: table.fold, scale, ngramLength: meta.ngram_length ?? 0 });
    const shape = (name) => need(name).shape.join();
    if (shape("recurrent") !== `${u},${4 * u}` || table.shape[1] !== 4 * u || shape("dense_kernel") !== `${u}` || shape("primed_h") !== `${maxlen + 1},${u}`
      || shape("primed_c") !== `${maxlen + 1},${u}` || (scale && scale.length !== this.rows)) fail(`'${where}' has inconsistent array shapes for an LSTM of ${u} units and maxlen ${maxlen}`);
    this.half = Float64Array.from({ length: 4 * u }, (_, j) => (j >= 2 * u && j < 3 * u ? 1 : 0.5));
    Object.assign(this, { dense: need("dense_kernel").data, denseBias: need("dense_bias").data[0], primedH: need("primed_h").data, primedC: need("primed_c").data });
    if (this.ngramLength) {
      Object.assign(this, { ngramScores: need("ngram_scores").data, ngramBias: need("ngram_bias").data[0] });
      if (this.ngramScores[0] !== 0) fail(`'${where}' has malformed n-gram scores: expected a vector whose first (padding) score is 0`);
    }
    if (!["auto", "wasm", "js"].includes(kernel)) throw new TypeError(`kernel must be "auto", "wasm" or "js", found ${json(kernel)}`);
    const wasm = kernel === "js" ? null : WasmKernel.create(this, recurrent.data);
    if (!wasm && kernel === "wasm") fail(`WebAssembly SIMD is not available here${u % 8 ? ` (or the model's ${u} units are not a multiple of 8)` : ""}: use kernel "js" or "auto"`);
    this.kernel = wasm ?? new JsKernel(this, recurrent.data);
    if (wasm) this.table = null; // the kernel has its own copy
  }

  /** The probability of one row of model input (`maxlen` front-padded word ids, then the n-gram ids). */
  probability(ids) {
    const { maxlen, units: u, kernel } = this;
    if (ids.length !== maxlen + this.ngramLength) throw new RangeError(`expected ${maxlen + this.ngramLength} ids, found ${ids.length}`);
    let length = 0;
    for (let t = 0; t < maxlen; t++) {
      if (!(ids[t] >= 0 && ids[t] < this.rows)) throw new RangeError(`word id ${ids[t]} at ${t} is outside 0..${this.rows - 1}`);
      if (ids[t] !== 0) length++;
    }
    for (let j = 0, first = (maxlen - length) * u; j < u; j++) {
      kernel.h[j] = this.primedH[first + j];
      kernel.c[j] = this.primedC[first + j];
    }
    for (let t = maxlen - length; t < maxlen; t++) kernel.step(ids[t]);
    let logit = this.denseBias;
    for (let j = 0; j < u; j++) logit += kernel.h[j] * this.dense[j];
    return this.ngramLength ? (sigmoid(logit) + this.ngramProbability(ids)) * 0.5 : sigmoid(logit);
  }

  ngramProbability(ids) {
    let total = 0;
    let count = 0;
    for (let t = this.maxlen; t < ids.length; t++) {
      if (ids[t] === 0) continue;
      if (!(ids[t] > 0 && ids[t] < this.ngramScores.length)) throw new RangeError(`n-gram id ${ids[t]} at ${t} is outside 0..${this.ngramScores.length - 1}`);
      total += this.ngramScores[ids[t]];
      count++;
    }
    return sigmoid(this.ngramBias + total / Math.max(count, 1));
  }
}

/** The compact form's table: a row is folded on its token's first step (a page loads at once), as the Python runtime
 * folds every row at load: (int8 embedding x its row's scale) kernel + bias, summed in float64, rounded to float32. */
function compactTable(need, where) {
  const [q, s, w, b] = ["embedding_q", "embedding_scale", "kernel", "bias"].map((n) => need(n));
  const [rows, e] = q.shape;
  const g = w.shape[1];
  if (w.shape[0] !== e || s.data.length !== rows || b.data.length !== g) fail(`'${where}' has inconsistent compact table arrays`);
  const [kernel, sum] = [Float64Array.from(w.data), new Float64Array(g)];
  const fold = (r, out, half) => {
    sum.fill(0);
    for (let k = 0; k < e; k++) {
      const x = q.data[r * e + k] * s.data[r];
      for (let j = 0, p = k * g; j < g; j++) sum[j] += x * kernel[p + j];
    }
    for (let j = 0; j < g; j++) out[r * g + j] = Math.fround(sum[j] + b.data[j]) * (half ? half[j] : 1);
  };
  return { shape: [rows, g], data: new Float32Array(rows * g), fold };
}

/** For a compact model: a function that folds a token's row into `out` (halved with `half`) on its first use. */
function folder(model, out, half) {
  if (!model.fold) return null;
  const done = new Uint8Array(model.rows);
  return (id) => {
    if (!done[id]) model.fold(id, out, half), (done[id] = 1);
  };
}

/** A step in plain JS, float64: z = the token's row + h R, R transposed (a dot product per gate column on a
 * contiguous row, four columns a pass), then the gates. Measured on Node 20 (u = 64): as fast as every other
 * layout tried (eight columns, k unrolled, interleaved blocks), 1.5x faster than float32 rows or a row-major
 * axpy, but about 0.5 ns a multiply-add, some 8x the native kernel's step: hence WasmKernel. */
class JsKernel {
  constructor(model, recurrent) {
    const u = model.units;
    Object.assign(this, { name: "js", units: u, table: model.table, scale: model.scale, half: model.half, fold: folder(model, model.table) });
    this.r = new Float64Array(4 * u * u);
    for (let k = 0; k < u; k++) for (let j = 0; j < 4 * u; j++) this.r[j * u + k] = recurrent[k * 4 * u + j] * model.half[j];
    Object.assign(this, { z: new Float64Array(4 * u), h: new Float64Array(u), c: new Float64Array(u) });
  }

  step(id) {
    const { z, h, c, units: u, r } = this;
    this.fold?.(id);
    if (this.scale) lookUpQuantized(z, this.table, this.scale[id], id * 4 * u, u);
    else lookUpFloat(z, this.table, this.half, id * 4 * u);
    for (let j = 0, p = 0; j < 4 * u; j += 4, p += 4 * u) {
      let a0 = z[j];
      let a1 = z[j + 1];
      let a2 = z[j + 2];
      let a3 = z[j + 3];
      for (let k = 0, p1 = p + u, p2 = p1 + u, p3 = p2 + u; k < u; k++) {
        const hk = h[k];
        a0 += r[p + k] * hk;
        a1 += r[p1 + k] * hk;
        a2 += r[p2 + k] * hk;
        a3 += r[p3 + k] * hk;
      }
      z[j] = a0;
      z[j + 1] = a1;
      z[j + 2] = a2;
      z[j + 3] = a3;
    }
    for (let j = 0; j < u; j++) {
      const i = 0.5 + 0.5 * tanh(z[j]);
      const f = 0.5 + 0.5 * tanh(z[u + j]);
      const o = 0.5 + 0.5 * tanh(z[3 * u + j]);
      c[j] = f * c[j] + i * tanh(z[2 * u + j]);
      h[j] = o * tanh(c[j]);
    }
  }
}

// A token's row, dequantized (q x scale) and halved: one function per table type, each monomorphic.
function lookUpQuantized(z, table, scale, row, u) {
  const half = 0.5 * scale;
  for (let j = 0; j < 2 * u; j++) z[j] = table[row + j] * half;
  for (let j = 2 * u; j < 3 * u; j++) z[j] = table[row + j] * scale;
  for (let j = 3 * u; j < 4 * u; j++) z[j] = table[row + j] * half;
}

function lookUpFloat(z, table, half, row) {
  for (let j = 0; j < half.length; j++) z[j] = table[row + j] * half[j];
}

// Eigen's rational tanh (the native kernel's, and ONNX Runtime's): within 3e-7 of tanh, 2.5x faster than Math.tanh in V8.
const TANH_CLAMP = 7.90531110763549805;
const TANH_P = [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-8, 1.48572235717979e-5, 6.37261928875436e-4, 4.89352455891786e-3];
const TANH_Q = [1.19825839466702e-6, 1.18534705686654e-4, 2.268434632439e-3, 4.89352518554385e-3];
function tanh(x) {
  const v = x < -TANH_CLAMP ? -TANH_CLAMP : x > TANH_CLAMP ? TANH_CLAMP : x;
  const x2 = v * v;
  let p = TANH_P[0];
  for (let k = 1; k < 7; k++) p = p * x2 + TANH_P[k];
  let q = TANH_Q[0];
  for (let k = 1; k < 4; k++) q = q * x2 + TANH_Q[k];
  return (v * p) / q;
}

// ---- the WebAssembly SIMD step ----
// The same step in float32 SIMD (f32x4: Node >= 16.4, Chrome 91, Firefox 89, Safari 16.4), assembled here, so that
// the module stays one file with no build. z = the token's row + h R, R in panels of 32 columns (each panel's rows
// contiguous), eight vector accumulators a panel, each column summed in k order as in the native kernel; the panels
// go backward on alternate steps (the native kernel's order: those read last are still in L1); then the gates.

const leb = (n, signed = false) => {
  const out = [];
  for (;;) {
    const b = n & 0x7f;
    n = signed ? n >> 7 : n >>> 7;
    if (signed ? (n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40) : n === 0) return [...out, b];
    out.push(b | 0x80);
  }
};
const vec = (items) => [...leb(items.length), ...items.flat(Infinity)];
const op = {
  get: (i) => [0x20, i], set: (i) => [0x21, i], tee: (i) => [0x22, i], i32: (n) => [0x41, ...leb(n, true)],
  add: 0x6a, sub: 0x6b, mul: 0x6c, select: 0x1b, shl: 0x74, ltU: 0x49, brIf: [0x0d, 0], loop: [0x03, 0x40], end: 0x0b,
  load: (offset) => [0xfd, 0x00, 4, ...leb(offset)], store: (offset) => [0xfd, 0x0b, 4, ...leb(offset)], splatLoad: [0xfd, 0x09, 2, 0],
  splat: (x) => [0x43, ...new Uint8Array(Float32Array.of(x).buffer), 0xfd, 0x13], fsplat: [0xfd, 0x13],
  load8x8: [0xfd, 0x01, 3, 0], extendLow: [0xfd, 0xa7, 1], extendHigh: [0xfd, 0xa8, 1], convert: [0xfd, 0xfa, 1],
  fadd: [0xfd, 0xe4, 1], fmul: [0xfd, 0xe6, 1], fdiv: [0xfd, 0xe7, 1], pmin: [0xfd, 0xea, 1], pmax: [0xfd, 0xeb, 1],
};
const { get, set, tee, i32, add, fmul, fadd } = op;
const loopWhile = (counter, step, limit, body) => [op.loop, body, get(counter), i32(step), add, tee(counter), get(limit), op.ltU, op.brIf, op.end];

// tanh of the v128 on the stack, inline (a call spills the live vectors); locals 21 x, 22 x^2.
const tanhCode = () => {
  const poly = (k) => [op.splat(k[0]), k.slice(1).map((c) => [get(22), fmul, op.splat(c), fadd])];
  return [op.splat(TANH_CLAMP), op.pmin, op.splat(-TANH_CLAMP), op.pmax, tee(21), get(21), fmul, set(22), poly(TANH_P), get(21), fmul, poly(TANH_Q), op.fdiv];
};

// step(z, h, c, r, u, back) after the row is in z; locals: 6 j, 7 row bytes (16u), 8 r pointer, 9 h pointer, 10 h end,
// 11..13 4u, 8u, 12u (gate offsets in bytes); 14 the panel (j, or 16u - 128 - j if back); 15 h[k]; 16..23 accumulators, then the gates.
const stepCode = () => {
  const acc = [0, 1, 2, 3, 4, 5, 6, 7];
  const z = (offset) => [get(0), get(6), add, offset ? [get(offset), add] : []];
  const act = (limit, sigmoid) => loopWhile(6, 16, limit, [z(0), z(0), op.load(0), tanhCode(), sigmoid ? [op.splat(0.5), fmul, op.splat(0.5), fadd] : [], op.store(0)]);
  return [
    get(4), i32(2), op.shl, tee(11), i32(2), op.shl, set(7), get(11), get(11), add, tee(12), get(11), add, set(13), get(1), get(11), add, set(10), i32(0), set(6),
    loopWhile(6, 128, 7, [
      get(7), i32(128), op.sub, get(6), op.sub, get(6), get(5), op.select, set(14),
      acc.map((a) => [get(0), get(14), add, op.load(16 * a), set(16 + a)]), get(3), get(14), get(4), op.mul, add, set(8), get(1), set(9),
      loopWhile(9, 4, 10, [get(9), op.splatLoad, set(15), acc.map((a) => [get(16 + a), get(8), op.load(16 * a), get(15), fmul, fadd, set(16 + a)]), get(8), i32(128), add, set(8)]),
      acc.map((a) => [get(0), get(14), add, get(16 + a), op.store(16 * a)]),
    ]),
    i32(0), set(6), act(12, true), act(13, false), act(7, true), i32(0), set(6),
    loopWhile(6, 16, 11, [
      get(2), get(6), add, z(11), op.load(0), get(2), get(6), add, op.load(0), fmul, z(0), op.load(0), z(12), op.load(0), fmul, fadd, tee(20), op.store(0),
      get(1), get(6), add, z(13), op.load(0), get(20), tanhCode(), fmul, op.store(0),
    ]),
  ];
};

// lookupQ(z, row, scale, half, n): z[j] = (q[j] x scale) x half[j] for the n int8 columns of a row; locals 5 j, 6 q, 7 scale.
const lookupCode = () => {
  const at = (base) => [get(base), get(5), i32(2), op.shl, add];
  const half = (extend, offset) => [at(0), get(6), extend, op.convert, get(7), fmul, at(3), op.load(offset), fmul, op.store(offset)];
  return [get(2), op.fsplat, set(7), i32(0), set(5), loopWhile(5, 8, 4, [get(1), get(5), add, op.load8x8, set(6), half(op.extendLow, 0), half(op.extendHigh, 16)])];
};

// copy(to, from, bytes): a float row (halved at load) into z; local 3 j.
const copyCode = () => [i32(0), set(3), loopWhile(3, 16, 2, [get(0), get(3), add, get(1), get(3), add, op.load(0), op.store(0)])];

function wasmModule() {
  const [I32, F32, V128] = [0x7f, 0x7d, 0x7b];
  const name = (s) => vec([...s].map((c) => c.charCodeAt(0)));
  const section = (id, items) => [id, ...leb(vec(items).length), ...vec(items)];
  const body = (locals, code) => {
    const bytes = [...vec(locals), ...code.flat(Infinity), op.end];
    return [...leb(bytes.length), ...bytes];
  };
  const types = [[0x60, 6, I32, I32, I32, I32, I32, I32, 0], [0x60, 5, I32, I32, F32, I32, I32, 0], [0x60, 3, I32, I32, I32, 0]];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, types),
    ...section(2, [[name("env"), name("memory"), 0x02, 0x00, 0x01]]),
    ...section(3, [[0], [1], [2]]),
    ...section(7, [[name("step"), 0x00, 0], [name("lookupQ"), 0x00, 1], [name("copy"), 0x00, 2]]),
    ...section(10, [body([[9, I32], [9, V128]], stepCode()), body([[1, I32], [2, V128]], lookupCode()), body([[1, I32]], copyCode())]),
  ]);
}

class WasmKernel {
  /** The kernel for `model`, or null where WebAssembly SIMD is missing (or refused, as by a page's CSP). */
  static create(model, recurrent) {
    const u = model.units;
    if (u % 8 !== 0 || typeof WebAssembly !== "object") return null;
    try {
      const memory = new WebAssembly.Memory({ initial: Math.ceil((40 * u + 16 * u * u + model.table.length * model.table.BYTES_PER_ELEMENT) / 65536) });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(wasmModule()), { env: { memory } });
      return new WasmKernel(model, recurrent, memory.buffer, instance.exports);
    } catch {
      return null;
    }
  }

  // Memory, from byte 0: z (16u bytes), h (4u), c (4u), half (16u), R (16u^2, halved, in panels), the table (halved if float).
  constructor(model, recurrent, buffer, exports) {
    const u = model.units;
    const at = { z: 0, h: 16 * u, c: 20 * u, half: 24 * u, r: 40 * u, table: 40 * u + 16 * u * u };
    Object.assign(this, { name: "wasm-simd", units: u, exports, scale: model.scale, at });
    Object.assign(this, { z: new Float32Array(buffer, 0, 4 * u), h: new Float32Array(buffer, at.h, u), c: new Float32Array(buffer, at.c, u) });
    new Float32Array(buffer, at.half, 4 * u).set(model.half);
    const r = new Float32Array(buffer, at.r, 4 * u * u);
    for (let k = 0; k < u; k++) for (let j = 0; j < 4 * u; j++) r[((j >> 5) * u + k) * 32 + (j & 31)] = recurrent[k * 4 * u + j] * model.half[j];
    if (model.scale) new Int8Array(buffer, at.table, model.table.length).set(model.table);
    else if (model.fold) this.fold = folder(model, new Float32Array(buffer, at.table, model.table.length), model.half);
    else new Float32Array(buffer, at.table, model.table.length).set(model.table.map((x, k) => x * model.half[k % (4 * u)]));
  }

  step(id) {
    const { units: u, at, exports } = this;
    this.fold?.(id);
    if (this.scale) exports.lookupQ(at.z, at.table + id * 4 * u, this.scale[id], at.half, 4 * u);
    else exports.copy(at.z, at.table + id * 16 * u, 16 * u);
    exports.step(at.z, at.h, at.c, at.r, u, (this.back ^= 1));
  }
}
