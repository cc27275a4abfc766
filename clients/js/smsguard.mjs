// smsguard.mjs: the JavaScript runtime of an smsguard bundle, for browsers and Node >= 18, with no dependency.
// It reads a bundle (over fetch from a base URL, from a folder in Node, or through your own reader), checks
// every file it uses against the SHA-256 in manifest.json, encodes a message exactly as the Python runtime
// does (vocab.json format 2) and runs the fused model on the bundle's .npz weights.
//
//   import { Classifier } from "./smsguard.mjs";
//   const classifier = await Classifier.load("/bundle/");        // or a folder path in Node
//   classifier.classify("WINNER!! Claim your prize")             // {probability: 0.99.., label: "spam"}
//   classifier.encode("...")                                      // Int32Array: the model input, for LiteRT.js

export const VOCAB_FORMAT = 2; // vocab.json
const TEXT_FORMAT = 1; // vocab.json's `text` section
const NGRAM_FORMAT = 1; // vocab.json's `ngrams` section
const NPZ_FORMAT = 1; // the .npz model's `meta`
const MANIFEST_MAJOR = 1; // manifest.json's format_version, major part
const MANIFEST = "manifest.json";
const NGRAM_CONSTANTS = { hash: "crc32", encoding: "utf-8", encoding_errors: "surrogatepass", wrap: ["<", ">"], order: "word, start, n" };
const STAMPED_BUCKETS = 1 << 22; // up to this many buckets, "seen" is a stamped array; past it, a Set

/** Any refusal of this module: a bundle it cannot use or a file that does not match its manifest. */
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

// ---- reading a bundle ----------------------------------------------------------------------------------

const isNode = typeof process === "object" && process !== null && typeof process.versions?.node === "string";
const nodeImport = (name) => import(/* @vite-ignore */ /* webpackIgnore: true */ name); // kept out of bundlers' graphs

/** A reader of a bundle's files by name: `source` is a base URL (string or URL), a folder path (Node), or
 * an async function (name) => bytes (Uint8Array or ArrayBuffer) of your own. */
function bundleReader(source, fetchImpl) {
  if (typeof source === "function") return { where: (name) => name, base: "the bundle", read: async (name) => asBytes(await source(name), name) };
  const text = source instanceof URL ? source.href : source;
  if (typeof text !== "string" || !text) throw new TypeError(`bundle must be a URL, a folder path or a reader function, found ${describe(source)}`);
  const urlLike = /^[a-z][a-z0-9+.-]*:/i.test(text) && !/^[a-z]:[\\/]/i.test(text); // not a Windows drive
  if (isNode && (!urlLike || text.startsWith("file:"))) return folderReader(text);
  const base = new URL(text.endsWith("/") ? text : `${text}/`, globalThis.document?.baseURI ?? undefined).href;
  const get = fetchImpl ?? globalThis.fetch;
  return {
    base,
    where: (name) => new URL(name, base).href,
    read: async (name) => {
      const url = new URL(name, base).href;
      let response;
      try {
        response = await get(url);
      } catch (error) {
        fail(`bundle file '${url}' could not be fetched: ${error.message}`);
      }
      if (!response.ok) fail(`bundle file '${url}' could not be fetched: HTTP ${response.status} ${response.statusText}`.trimEnd());
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

function folderReader(folder) {
  const path = folder.startsWith("file:") ? decodeURIComponent(new URL(folder).pathname) : folder;
  const base = path.replace(/[\\/]+$/, "") || "/";
  const where = (name) => `${base}/${name}`;
  return {
    base,
    where,
    read: async (name) => {
      const fs = await nodeImport("node:fs/promises");
      try {
        return new Uint8Array(await fs.readFile(where(name)));
      } catch (error) {
        if (error.code !== "ENOENT") fail(`bundle file '${where(name)}' cannot be read: ${error.message}`);
        const folderThere = await fs.stat(base).then((s) => s.isDirectory(), () => null);
        if (folderThere === null) fail(`bundle '${base}' does not exist; create one with \`smsguard export RUN_DIR --out ${base}\``);
        if (!folderThere) fail(`bundle '${base}' is not a folder; create one with \`smsguard export RUN_DIR --out ${base}\``);
        fail(`bundle file '${where(name)}' is missing; re-export the bundle or copy the whole folder`);
      }
    },
  };
}

function asBytes(data, name) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`the bundle reader must return a Uint8Array or an ArrayBuffer for '${name}', found ${describe(data)}`);
}

async function sha256Hex(bytes) {
  let subtle = globalThis.crypto?.subtle;
  if (!subtle && isNode) subtle = (await nodeImport("node:crypto")).webcrypto.subtle; // Node 18 without the global
  if (!subtle) fail("crypto.subtle is missing, so the bundle's hashes cannot be checked: serve this page over https or from localhost (a secure context)");
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function parseJson(bytes, where, what) {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    return fail(`${what} '${where}' is not valid JSON (${error.message}); re-export the bundle`);
  }
}

/** The manifest's entry for a file, or a BundleError naming what the bundle has. */
function entryOf(manifest, name, where) {
  const entry = manifest.files.find((file) => file.name === name);
  if (!entry) fail(`manifest '${where}' does not list '${name}'; it lists: ${manifest.files.map((f) => f.name).join(", ")}`);
  if (/[\\/]/.test(name) || name === "." || name === "..") fail(`manifest names file '${name}' outside its bundle`);
  return entry;
}

function checkManifest(manifest, where) {
  if (manifest === null || typeof manifest !== "object" || Array.isArray(manifest)) fail(`manifest '${where}' is not a JSON object; re-export the bundle`);
  const major = Number.parseInt(String(manifest.format_version).split(".")[0], 10);
  if (!Number.isInteger(major)) fail(`manifest '${where}' has no valid format_version (found ${JSON.stringify(manifest.format_version)}); re-export the bundle`);
  if (major > MANIFEST_MAJOR) {
    fail(`manifest '${where}' has format ${manifest.format_version}, written by smsguard ${manifest.smsguard_version}; this runtime reads format ${MANIFEST_MAJOR}.x: use the smsguard.mjs of that smsguard`);
  }
  const fine = Array.isArray(manifest.files) && manifest.files.every((f) => f && typeof f.name === "string" && /^[0-9a-f]{64}$/.test(f.sha256))
    && Array.isArray(manifest.labels) && manifest.labels.length === 2 && typeof manifest.threshold === "number" && typeof manifest.vocabulary === "string";
  if (!fine) fail(`manifest '${where}' is malformed: expected files (name, sha256), labels, threshold and vocabulary; re-export the bundle`);
  return manifest;
}

/** A bundle: its manifest and vocabulary, read and checked; `classifier(name)` loads a model of it. */
export class Bundle {
  constructor(reader, manifest, vocabulary, manifestSha256) {
    this.reader = reader;
    this.manifest = manifest;
    this.vocabulary = vocabulary;
    this.manifestSha256 = manifestSha256; // what a conformance file or a signature names the bundle by
  }

  /** Read and check a bundle: `source` is a base URL, a folder path (Node) or an async function name => bytes. */
  static async load(source, options = {}) {
    const reader = bundleReader(source, options.fetch);
    const where = reader.where(MANIFEST);
    const raw = await reader.read(MANIFEST);
    const manifest = checkManifest(parseJson(raw, where, "manifest"), where);
    const bundle = new Bundle(reader, manifest, null, await sha256Hex(raw));
    const vocabWhere = reader.where(manifest.vocabulary);
    const data = parseJson(await bundle.verifiedBytes(manifest.vocabulary), vocabWhere, "vocabulary");
    try {
      bundle.vocabulary = new Vocabulary(data);
    } catch (error) {
      if (error instanceof BundleError) fail(`'${vocabWhere}': ${error.message}`);
      throw error;
    }
    return bundle;
  }

  /** The bytes of a file the manifest lists, refused (IntegrityError) unless they hash to its sha256. */
  async verifiedBytes(name) {
    const entry = entryOf(this.manifest, name, this.reader.where(MANIFEST));
    const bytes = await this.reader.read(name);
    const actual = await sha256Hex(bytes);
    if (actual !== entry.sha256) {
      throw new IntegrityError(
        `bundle file '${this.reader.where(name)}' does not match its manifest: expected sha256 ${entry.sha256}, found ${actual} ` +
          `(${bytes.length} bytes, expected ${entry.size}); the file was changed or truncated, re-export the bundle or copy it again`,
      );
    }
    return bytes;
  }

  /** The names of the .npz models this runtime runs, the recommended one first. */
  get models() {
    const names = this.manifest.files.filter((f) => f.kind === "model" && f.name.endsWith(".npz")).map((f) => f.name);
    const best = this.manifest.recommended?.npz;
    return names.includes(best) ? [best, ...names.filter((n) => n !== best)] : names;
  }

  get labels() {
    return [...this.manifest.labels];
  }

  /** The threshold a model is used at: its own when the manifest gives one, else the bundle's. */
  thresholdOf(name) {
    const own = this.manifest.files.find((f) => f.name === name)?.threshold;
    return typeof own === "number" ? own : this.manifest.threshold;
  }

  /** A classifier on model `name` (default: the manifest's recommended .npz), its file checked. */
  async classifier(name = this.manifest.recommended?.npz, kernel = "auto") {
    const available = this.models;
    if (!name) fail(`bundle '${this.reader.base}' recommends no .npz model; name one of: ${available.join(", ") || "(none)"}`);
    if (!available.includes(name)) fail(`bundle '${this.reader.base}' has no .npz model '${name}'; it has: ${available.join(", ") || "(none)"}`);
    const where = this.reader.where(name);
    const model = LstmModel.fromArrays(await readNpz(await this.verifiedBytes(name), where), where, kernel);
    const vocabulary = this.vocabulary;
    if (model.maxlen !== vocabulary.maxlen || model.ngramLength !== vocabulary.ngramLength || model.rows > vocabulary.tableRows) {
      fail(`'${where}' does not fit the bundle's vocabulary: it takes ${model.maxlen} word ids and ${model.ngramLength} n-gram ids, the vocabulary gives ${vocabulary.maxlen} and ${vocabulary.ngramLength}`);
    }
    if (vocabulary.padding !== "pre") fail(`'${where}' needs front-padded word ids, but the vocabulary pads '${vocabulary.padding}'`);
    model.checkIds(vocabulary);
    return new Classifier(this, name, model);
  }
}

// ---- the classifier ------------------------------------------------------------------------------------

/** One model of a bundle and its vocabulary: `classify(text)`, `probability(text)`, `encode(text)`. Reuses
 * its buffers between calls, so keep one per thread (a worker) and call it as often as you like. */
export class Classifier {
  constructor(bundle, name, model) {
    this.bundle = bundle;
    this.model = name;
    this.vocabulary = bundle.vocabulary;
    this.threshold = bundle.thresholdOf(name);
    this.labels = bundle.labels;
    this.serial = bundle.manifest.serial;
    this.lstm = model;
    this.kernel = model.kernel.name; // "wasm-simd" or "js"
    this.row = new Int32Array(this.vocabulary.width);
  }

  /** A classifier on a bundle's model (`options.model`, default: the recommended .npz). */
  static async load(source, options = {}) {
    return (await Bundle.load(source, options)).classifier(options.model, options.kernel);
  }

  /** The model input of `text`: `width` int32 ids (the word ids, then the n-gram ids), as the .tflite model takes it. */
  encode(text) {
    return this.vocabulary.encode(text);
  }

  /** The probability that `text` is labels[1] ("spam"). */
  probability(text) {
    this.row.fill(0);
    return this.lstm.probability(this.vocabulary.encode(text, this.row));
  }

  /** {probability, label}: the label at the model's threshold. */
  classify(text) {
    const probability = this.probability(text);
    return { probability, label: this.labelOf(probability) };
  }

  labelOf(probability) {
    return probability >= this.threshold ? this.labels[1] : this.labels[0];
  }
}

function describe(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return value.constructor?.name ? `a ${value.constructor.name}` : "an object";
  return typeof value;
}

// ---- text: code points, the pinned lowercase, normalise ---------------------------------------------------

/** The code points of a string; an unpaired surrogate is one code point, as in Python. */
function codePoints(text, out) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    out[n++] = c;
  }
  return n;
}

/** A map code point -> replacement code points, from `{"hex": "string"}` (the replacement as Python's code points). */
function codeMap(object, what) {
  if (object === null || typeof object !== "object") fail(`${what} must be a JSON object of code points`);
  const map = new Map();
  for (const [key, value] of Object.entries(object)) {
    if (!/^[0-9a-f]{1,6}$/.test(key) || typeof value !== "string") fail(`${what} has an entry ${JSON.stringify(key)}: expected a lowercase hex code point and a string`);
    const target = [];
    codePointsOfJson(value, target);
    map.set(Number.parseInt(key, 16), target.length === 1 ? target[0] : target);
  }
  return map;
}

// A JSON string decodes an escaped surrogate pair as one character in both Python and JS, so a value's code
// points are the same in both.
function codePointsOfJson(value, out) {
  const buffer = new Int32Array(value.length);
  const n = codePoints(value, buffer);
  for (let i = 0; i < n; i++) out.push(buffer[i]);
}

/** Inclusive ranges [[first, last], ...] as sorted starts and ends, with a membership test. */
class Ranges {
  constructor(ranges, what) {
    const valid = Array.isArray(ranges) && ranges.every((r) => Array.isArray(r) && r.length === 2 && Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] <= r[1]);
    if (!valid) fail(`${what} must be a list of [first, last] code point ranges`);
    const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
    this.firsts = Int32Array.from(sorted, (r) => r[0]);
    this.lasts = Int32Array.from(sorted, (r) => r[1]);
    this.low = new Uint8Array(0x10000); // a table below 0x10000, a binary search above
    for (const [first, last] of sorted) if (first < 0x10000) this.low.fill(1, first, Math.min(last, 0xffff) + 1);
  }

  has(c) {
    if (c < 0x10000) return this.low[c] === 1;
    let lo = 0;
    let hi = this.firsts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (c < this.firsts[mid]) hi = mid - 1;
      else if (c > this.lasts[mid]) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

/** A set of code points with a fast test below 0x10000. */
class CodeSet {
  constructor(codes) {
    this.low = new Uint8Array(0x10000);
    this.high = new Set();
    for (const c of codes) {
      if (c < 0x10000) this.low[c] = 1;
      else this.high.add(c);
    }
  }

  has(c) {
    return c < 0x10000 ? this.low[c] === 1 : this.high.has(c);
  }
}

/** The code points of a JSON string (from vocab.json), as Python reads them. */
function jsonCodePoints(value) {
  const out = [];
  codePointsOfJson(value, out);
  return out;
}

/** A growable Int32Array of code points: the stages of the text pipeline write into these, reused per call. */
class Buffer32 {
  constructor(size = 256) {
    this.data = new Int32Array(size);
    this.length = 0;
  }

  reserve(size) {
    if (this.data.length < size) this.data = new Int32Array(Math.max(size, this.data.length * 2));
    this.length = 0;
    return this.data;
  }

  push(c) {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = c;
  }
}

/** Append `c` mapped through `map` (a code point, or several) to `out`. */
function pushMapped(out, map, c) {
  const to = map.get(c);
  if (to === undefined) out.push(c);
  else if (typeof to === "number") out.push(to);
  else for (let k = 0; k < to.length; k++) out.push(to[k]);
}

/** The `text` section: the pinned lowercase (never the platform's) and the optional normalisation. */
class TextRules {
  constructor(section, whitespace) {
    if (section === null || typeof section !== "object") fail("vocabulary has no `text` section; re-export the bundle");
    if (section.format !== TEXT_FORMAT) fail(`vocabulary text section format ${JSON.stringify(section.format)} is not supported (this runtime reads ${TEXT_FORMAT})`);
    const lower = section.lowercase ?? fail("vocabulary text section has no `lowercase`");
    this.lowerMap = codeMap(lower.map, "text.lowercase.map");
    const sigma = lower.final_sigma ?? fail("vocabulary text section has no `lowercase.final_sigma`");
    this.cased = new Ranges(sigma.cased, "text.lowercase.final_sigma.cased");
    this.ignorable = new Ranges(sigma.case_ignorable, "text.lowercase.final_sigma.case_ignorable");
    this.lowerAscii = Int32Array.from({ length: 128 }, (_, c) => (typeof this.lowerMap.get(c) === "number" ? this.lowerMap.get(c) : this.lowerMap.has(c) ? -1 : c));
    this.whitespace = whitespace;
    this.normalise = section.normalise === null || section.normalise === undefined ? null : new Normaliser(section.normalise, whitespace);
  }

  /** lowercase(src[0..n)) into `out` (a Buffer32, emptied first). */
  lowercase(src, n, out) {
    out.reserve(n);
    const ascii = this.lowerAscii;
    for (let i = 0; i < n; i++) {
      const c = src[i];
      if (c < 128 && ascii[c] >= 0) out.push(ascii[c]);
      else if (c === 0x3a3) out.push(this.finalSigma(src, n, i) ? 0x3c2 : 0x3c3);
      else pushMapped(out, this.lowerMap, c);
    }
  }

  // CPython's handle_capital_sigma: a cased letter before (skipping case-ignorables), none after.
  finalSigma(src, n, i) {
    let j = i - 1;
    while (j >= 0 && this.ignorable.has(src[j])) j--;
    if (j < 0 || !this.cased.has(src[j])) return false;
    j = i + 1;
    while (j < n && this.ignorable.has(src[j])) j++;
    return j === n || !this.cased.has(src[j]);
  }
}

const isAsciiLetter = (c) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isAsciiAlnum = (c) => isAsciiLetter(c) || (c >= 0x30 && c <= 0x39);

/** normalise(s): remove, fold, lookalikes (in words with an ASCII letter), join (letters spaced apart). */
class Normaliser {
  constructor(section, whitespace) {
    this.remove = new Ranges(section.remove, "text.normalise.remove");
    this.fold = codeMap(section.fold, "text.normalise.fold");
    this.lookalikes = codeMap(section.lookalikes, "text.normalise.lookalikes");
    this.whitespace = whitespace;
    const join = section.join ?? fail("vocabulary text section has no `normalise.join`");
    const { min_letters: letters, separators, max_separator_run: run } = join;
    if (!Number.isInteger(letters) || letters < 1 || !Number.isInteger(run) || run < 1 || typeof separators !== "string" || !separators) {
      fail("text.normalise.join must give min_letters >= 1, max_separator_run >= 1 and separators");
    }
    // The regular expression runs on a stand-in text with one UTF-16 unit per code point: letters and
    // digits as they are, each separator as itself (or a private-use stand-in when it is outside the BMP
    // or a surrogate), anything else as one character that is neither. Positions are then code point indices.
    const seps = [...new Set(jsonCodePoints(separators))];
    this.standIn = new Map(seps.map((c, k) => [c, c < 0x10000 && (c < 0xd800 || c > 0xdfff) ? c : 0xe000 + k]));
    const used = new Set(this.standIn.values());
    this.other = [0xffff, 0xfffe, 0xfdd0].find((c) => !used.has(c));
    const klass = [...used].map((c) => (/[\\\]^-]/.test(String.fromCharCode(c)) ? "\\" : "") + String.fromCharCode(c)).join("");
    this.join = new RegExp(`(?<![A-Za-z0-9])[A-Za-z0-9](?:[${klass}]{1,${run}}[A-Za-z0-9]){${letters - 1},}(?![A-Za-z0-9])`, "g");
    this.stage = new Buffer32();
  }

  /** normalise(src[0..n)) into `out` (a Buffer32). */
  apply(src, n, out) {
    const a = this.stage;
    a.reserve(n);
    for (let i = 0; i < n; i++) {
      const c = src[i];
      if (this.remove.has(c)) continue;
      pushMapped(a, this.fold, c);
    }
    out.reserve(a.length);
    this.swapLookalikes(a.data, a.length, out);
    const joined = this.joinLetters(out.data, out.length);
    if (joined) {
      out.reserve(joined.length);
      for (const c of joined) out.push(c);
    }
  }

  swapLookalikes(src, n, out) {
    const ws = this.whitespace;
    let i = 0;
    while (i < n) {
      if (ws.has(src[i])) {
        out.push(src[i++]);
        continue;
      }
      let end = i;
      let ascii = false;
      while (end < n && !ws.has(src[end])) ascii = isAsciiLetter(src[end++]) || ascii;
      for (; i < end; i++) {
        if (ascii) pushMapped(out, this.lookalikes, src[i]);
        else out.push(src[i]);
      }
    }
  }

  /** The joined code points, or null when nothing matched. */
  joinLetters(src, n) {
    let stand = "";
    let any = false;
    const chunk = [];
    for (let i = 0; i < n; i++) {
      const c = src[i];
      const s = isAsciiAlnum(c) ? c : this.standIn.get(c) ?? this.other;
      any = any || isAsciiAlnum(c);
      chunk.push(s);
      if (chunk.length === 4096) {
        stand += String.fromCharCode.apply(null, chunk);
        chunk.length = 0;
      }
    }
    if (!any) return null;
    stand += String.fromCharCode.apply(null, chunk);
    this.join.lastIndex = 0;
    let match = this.join.exec(stand);
    if (!match) return null;
    const out = [];
    let done = 0;
    while (match) {
      for (let i = done; i < match.index; i++) out.push(src[i]);
      const end = match.index + match[0].length;
      for (let i = match.index; i < end; i++) if (isAsciiAlnum(src[i])) out.push(src[i]);
      done = end;
      match = this.join.exec(stand);
    }
    for (let i = done; i < n; i++) out.push(src[i]);
    return out;
  }
}

// ---- the vocabulary: word ids (Keras Tokenizer) and the n-gram bag ----------------------------------------

const CRC_TABLE = (() => {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  return table;
})();

/** vocab.json (format 2): `encode(text)` gives the model input, `width` int32 ids. */
export class Vocabulary {
  constructor(data) {
    if (data === null || typeof data !== "object") fail("vocabulary is not a JSON object");
    if (data.format === 1) fail("vocabulary format 1 is not supported by this runtime: re-export the bundle with smsguard >= 0.2");
    if (data.format !== VOCAB_FORMAT) fail(`vocabulary format ${JSON.stringify(data.format)} is not supported (this runtime reads ${VOCAB_FORMAT})`);
    const { tokenizer, sequence, word_index: wordIndex, ngrams } = data;
    if (!tokenizer || !sequence || !wordIndex || typeof wordIndex !== "object") fail("vocabulary is malformed: expected tokenizer, sequence and word_index");
    this.lower = tokenizer.lower === true;
    this.filters = new CodeSet(jsonCodePoints(String(tokenizer.filters ?? "")));
    this.split = jsonCodePoints(String(tokenizer.split ?? ""));
    if (!this.split.length) fail("vocabulary is malformed: tokenizer.split must be a non-empty string");
    this.numWords = tokenizer.num_words ?? null;
    this.maxlen = sequence.maxlen;
    this.padding = sequence.padding;
    this.truncating = sequence.truncating;
    if (!Number.isInteger(this.maxlen) || this.maxlen < 1) fail(`vocabulary is malformed: sequence.maxlen must be a positive integer, found ${JSON.stringify(this.maxlen)}`);
    for (const side of ["padding", "truncating"]) if (!["pre", "post"].includes(this[side])) fail(`vocabulary is malformed: ${side} must be 'pre' or 'post', found ${JSON.stringify(this[side])}`);
    this.words = new Map();
    let largest = 0;
    for (const [word, id] of Object.entries(wordIndex)) {
      if (!Number.isInteger(id) || id < 1) fail("vocabulary is malformed: word_index must map words to positive integer ids");
      largest = Math.max(largest, id);
      if (this.numWords === null || id < this.numWords) this.words.set(word, id);
    }
    this.tableRows = this.numWords ?? largest + 1;
    const oov = tokenizer.oov_token ?? null;
    this.oov = oov === null ? null : wordIndex[oov] ?? null;
    if (this.oov !== null && !Object.hasOwn(wordIndex, oov)) this.oov = null;
    this.ngrams = ngrams ? new NgramRules(ngrams) : null;
    this.ngramLength = this.ngrams ? this.ngrams.length : 0;
    const whitespace = new CodeSet(jsonCodePoints(ngrams ? ngrams.whitespace : DEFAULT_WHITESPACE));
    this.text = new TextRules(data.text, whitespace);
    this.width = this.maxlen + this.ngramLength;
    this.points = new Int32Array(256);
    this.normal = new Buffer32();
    this.lowered = new Buffer32();
    this.ids = [];
  }

  /** The model input of `text`: an Int32Array of `width` ids (into `out` when given: it must hold zeros). */
  encode(text, out = new Int32Array(this.width)) {
    if (typeof text !== "string") throw new TypeError(`text must be a string, found ${describe(text)}`);
    if (this.points.length < text.length) this.points = new Int32Array(Math.max(text.length, this.points.length * 2));
    let src = this.points;
    let n = codePoints(text, src);
    const rules = this.text;
    if (rules.normalise) {
      rules.normalise.apply(src, n, this.normal);
      src = this.normal.data;
      n = this.normal.length;
    }
    let lowered = null;
    if (this.lower || (this.ngrams && this.ngrams.lower)) {
      rules.lowercase(src, n, this.lowered);
      lowered = this.lowered;
    }
    if (this.lower) this.wordIds(lowered.data, lowered.length, out);
    else this.wordIds(src, n, out);
    if (this.ngrams) {
      if (this.ngrams.lower) this.ngrams.ids(lowered.data, lowered.length, rules.whitespace, out, this.maxlen);
      else this.ngrams.ids(src, n, rules.whitespace, out, this.maxlen);
    }
    return out;
  }

  /** Keras: filters become `split`, split on `split`, drop empty words, look each up; then pad and truncate. */
  wordIds(src, n, out) {
    const ids = this.ids;
    ids.length = 0;
    const keepFirst = this.truncating === "post";
    if (this.split.length > 1) [src, n] = this.translated(src, n);
    const split = this.split;
    const single = split.length === 1 ? split[0] : -1;
    const word = [];
    for (let i = 0; i <= n; i++) {
      let cut = i === n ? 1 : 0;
      if (!cut) cut = single >= 0 ? (src[i] === single || this.filters.has(src[i]) ? 1 : 0) : startsWith(src, n, i, split);
      if (!cut) {
        word.push(src[i]);
        continue;
      }
      i += cut - 1;
      if (!word.length) continue;
      this.lookUp(word, ids);
      word.length = 0;
      if (keepFirst && ids.length >= this.maxlen) break;
    }
    const kept = keepFirst ? ids.slice(0, this.maxlen) : ids.slice(Math.max(0, ids.length - this.maxlen));
    const at = this.padding === "pre" ? this.maxlen - kept.length : 0;
    for (let k = 0; k < kept.length; k++) out[at + k] = kept[k];
  }

  // A split of several code points: every filter becomes the split first, then Python's str.split finds
  // the split left to right in the result, so a filter can complete one.
  translated(src, n) {
    const out = [];
    for (let i = 0; i < n; i++) {
      if (this.filters.has(src[i])) out.push(...this.split);
      else out.push(src[i]);
    }
    return [out, out.length];
  }

  lookUp(word, ids) {
    const key = wordKey(word);
    const id = key === null ? undefined : this.words.get(key);
    if (id !== undefined) ids.push(id);
    else if (this.oov !== null) ids.push(this.oov);
  }
}

// The characters Python's str.split() splits on; vocab.json lists them (ngrams.whitespace) when it has a bag.
const DEFAULT_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";

/** A word as the JS string a vocab.json key would be, or null when no key can be it: a high surrogate code
 * point followed by a low one is two code points in Python, but JSON (in both languages) reads such a key
 * as the one character they pair into. */
function startsWith(src, n, i, part) {
  if (i + part.length > n) return 0;
  for (let k = 0; k < part.length; k++) if (src[i + k] !== part[k]) return 0;
  return part.length;
}

function wordKey(word) {
  let key = "";
  for (let k = 0; k < word.length; k++) {
    const c = word[k];
    if (c >= 0xdc00 && c <= 0xdfff && k > 0 && word[k - 1] >= 0xd800 && word[k - 1] <= 0xdbff) return null;
    key += String.fromCodePoint(c);
  }
  return key;
}

/** The hashed character n-grams (the bag): `length` ids, crc32 of each gram's UTF-8 (surrogatepass). */
class NgramRules {
  constructor(spec) {
    if (spec.format !== NGRAM_FORMAT) fail(`n-gram bag format ${JSON.stringify(spec.format)} is not supported (this runtime reads ${NGRAM_FORMAT})`);
    for (const [name, value] of Object.entries(NGRAM_CONSTANTS)) {
      if (JSON.stringify(spec[name]) !== JSON.stringify(value)) fail(`n-gram bag field '${name}' is ${JSON.stringify(spec[name])}, this runtime computes ${JSON.stringify(value)}`);
    }
    const { buckets, min_n: minN, max_n: maxN, length, lower } = spec;
    const ok = Number.isInteger(buckets) && buckets >= 1 && buckets <= 2 ** 31 - 2 && Number.isInteger(minN) && Number.isInteger(maxN)
      && minN >= 1 && minN <= maxN && maxN <= 16 && Number.isInteger(length) && length >= 1 && typeof lower === "boolean" && typeof spec.whitespace === "string";
    if (!ok) fail("n-gram bag is malformed: expected buckets, min_n <= max_n <= 16, length and lower");
    Object.assign(this, { buckets, minN, maxN, length, lower });
    this.stamps = buckets <= STAMPED_BUCKETS ? new Uint32Array(buckets + 1) : null;
    this.stamp = 0;
    this.wrapped = new Int32Array(64);
  }

  /** The n-gram ids of src[0..n) into out[at..at+length) (zeros after them: `out` holds zeros). */
  ids(src, n, whitespace, out, at) {
    const seen = this.stamps ? this.nextStamp() : new Set();
    let count = 0;
    let i = 0;
    while (i < n && count < this.length) {
      while (i < n && whitespace.has(src[i])) i++;
      if (i === n) break;
      let end = i;
      while (end < n && !whitespace.has(src[end])) end++;
      count = this.wordIds(src, i, end, seen, out, at, count);
      i = end;
    }
  }

  nextStamp() {
    if (++this.stamp === 0xffffffff) {
      this.stamps.fill(0);
      this.stamp = 1;
    }
    return this.stamp;
  }

  // Every gram of "<" + word + ">": each start, n = min_n..max_n; one running CRC per start.
  wordIds(src, from, to, seen, out, at, count) {
    const size = to - from + 2;
    if (this.wrapped.length < size) this.wrapped = new Int32Array(size * 2);
    const w = this.wrapped;
    w[0] = 0x3c;
    for (let k = from; k < to; k++) w[k - from + 1] = src[k];
    w[size - 1] = 0x3e;
    const { minN, maxN, buckets, length, stamps } = this;
    for (let s = 0; s < size; s++) {
      let crc = -1;
      const last = Math.min(size, s + maxN);
      for (let e = s; e < last; e++) {
        const c = w[e];
        if (c < 0x80) crc = CRC_TABLE[(crc ^ c) & 0xff] ^ (crc >>> 8);
        else crc = crcCodePoint(crc, c);
        if (e - s + 1 < minN) continue;
        const id = (((crc ^ -1) >>> 0) % buckets) + 1;
        if (stamps) {
          if (stamps[id] === seen) continue;
          stamps[id] = seen;
        } else {
          if (seen.has(id)) continue;
          seen.add(id);
        }
        out[at + count++] = id;
        if (count === length) return count;
      }
    }
    return count;
  }
}

/** The CRC register after the UTF-8 bytes of code point c (a surrogate as its 3 bytes: surrogatepass). */
function crcCodePoint(crc, c) {
  const byte = (r, b) => CRC_TABLE[(r ^ b) & 0xff] ^ (r >>> 8);
  if (c < 0x800) return byte(byte(crc, 0xc0 | (c >> 6)), 0x80 | (c & 0x3f));
  if (c < 0x10000) return byte(byte(byte(crc, 0xe0 | (c >> 12)), 0x80 | ((c >> 6) & 0x3f)), 0x80 | (c & 0x3f));
  return byte(byte(byte(byte(crc, 0xf0 | (c >> 18)), 0x80 | ((c >> 12) & 0x3f)), 0x80 | ((c >> 6) & 0x3f)), 0x80 | (c & 0x3f));
}

// ---- .npz and .npy -------------------------------------------------------------------------------------

/** The arrays of an .npz (a zip of .npy files; stored, or deflated), by name without ".npy". */
export async function readNpz(bytes, where = "the .npz file") {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) fail(`'${where}' is not an .npz file: no zip directory found`);
  let count = view.getUint16(end + 10, true);
  let offset = view.getUint32(end + 16, true);
  if ((count === 0xffff || offset === 0xffffffff) && end >= 20 && view.getUint32(end - 20, true) === 0x07064b50) {
    const at = Number(view.getBigUint64(end - 12, true)); // the zip64 end of central directory
    count = Number(view.getBigUint64(at + 32, true));
    offset = Number(view.getBigUint64(at + 48, true));
  }
  const arrays = {};
  for (let k = 0; k < count; k++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== 0x02014b50) fail(`'${where}' is not an .npz file: its zip directory is damaged`);
    const entry = zipEntry(view, bytes, offset);
    offset = entry.next;
    const data = await entryData(view, bytes, entry, where);
    if (entry.name.endsWith(".npy")) arrays[entry.name.slice(0, -4)] = parseNpy(data, `${where}:${entry.name}`);
  }
  return arrays;
}

function zipEntry(view, bytes, at) {
  const method = view.getUint16(at + 10, true);
  let packed = view.getUint32(at + 20, true);
  let size = view.getUint32(at + 24, true);
  const nameLength = view.getUint16(at + 28, true);
  const extraLength = view.getUint16(at + 30, true);
  const commentLength = view.getUint16(at + 32, true);
  let local = view.getUint32(at + 42, true);
  const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
  // zip64: the fields that do not fit are 0xffffffff, and their values follow in extra field 0x0001, in this order.
  for (let e = at + 46 + nameLength; e + 4 <= at + 46 + nameLength + extraLength; ) {
    const id = view.getUint16(e, true);
    const length = view.getUint16(e + 2, true);
    if (id === 1) {
      let p = e + 4;
      const next = () => Number(view.getBigUint64((p += 8) - 8, true));
      if (size === 0xffffffff) size = next();
      if (packed === 0xffffffff) packed = next();
      if (local === 0xffffffff) local = next();
    }
    e += 4 + length;
  }
  return { name, method, packed, size, local, next: at + 46 + nameLength + extraLength + commentLength };
}

async function entryData(view, bytes, entry, where) {
  const at = entry.local;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== 0x04034b50) fail(`'${where}' is not an .npz file: entry '${entry.name}' is damaged`);
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  if (start + entry.packed > bytes.length) fail(`'${where}' is truncated: entry '${entry.name}' runs past its end`);
  const packed = bytes.subarray(start, start + entry.packed);
  if (entry.method === 0) return packed;
  if (entry.method === 8) return inflateRaw(packed, entry, where);
  return fail(`'${where}' entry '${entry.name}' uses zip compression method ${entry.method}; save the model with np.savez or np.savez_compressed`);
}

async function inflateRaw(packed, entry, where) {
  let stream = null;
  try {
    stream = new DecompressionStream("deflate-raw");
  } catch {
    // an older browser or Node: below
  }
  let out;
  if (stream) out = new Uint8Array(await new Response(new Blob([packed]).stream().pipeThrough(stream)).arrayBuffer());
  else if (isNode) out = new Uint8Array((await nodeImport("node:zlib")).inflateRawSync(packed));
  else fail(`'${where}' entry '${entry.name}' is deflated and this browser has no DecompressionStream('deflate-raw'); save the model with np.savez (uncompressed)`);
  if (out.length !== entry.size) fail(`'${where}' entry '${entry.name}' inflates to ${out.length} bytes, expected ${entry.size}`);
  return out;
}

const DTYPES = { "<f4": Float32Array, "<f8": Float64Array, "|i1": Int8Array, "<i1": Int8Array, "|u1": Uint8Array, "<i4": Int32Array, "<i8": BigInt64Array };
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** One .npy array: {dtype, shape, data} (data a typed array, or a string for a 0-d '<U' array). */
export function parseNpy(bytes, where = "the .npy file") {
  const magic = "\x93NUMPY";
  for (let i = 0; i < 6; i++) if (bytes[i] !== magic.charCodeAt(i)) fail(`'${where}' is not an .npy array: no NUMPY magic`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || shapeText === undefined) fail(`'${where}' has an .npy header this runtime cannot read: ${header.trim()}`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (fortran && shape.length > 1) fail(`'${where}' is stored in Fortran order; save it C-contiguous`);
  const body = bytes.subarray(start);
  const unicode = /^<U(\d+)$/.exec(descr);
  if (unicode) {
    const chars = count * Number(unicode[1]);
    const units = new DataView(body.buffer, body.byteOffset, chars * 4);
    let text = "";
    for (let i = 0; i < chars; i++) {
      const c = units.getUint32(i * 4, true);
      if (c === 0) break;
      text += String.fromCodePoint(c);
    }
    return { dtype: descr, shape, data: text };
  }
  const Type = DTYPES[descr] ?? fail(`'${where}' holds dtype '${descr}', which this runtime does not read`);
  if (body.length < count * Type.BYTES_PER_ELEMENT) fail(`'${where}' is truncated: expected ${count} values of ${descr}`);
  const copy = body.slice(0, count * Type.BYTES_PER_ELEMENT); // aligned, and owned
  if (!LITTLE_ENDIAN && Type.BYTES_PER_ELEMENT > 1) new Uint8Array(copy.buffer).set(swapped(copy, Type.BYTES_PER_ELEMENT));
  return { dtype: descr, shape, data: new Type(copy.buffer) };
}

function swapped(bytes, width) {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) for (let k = 0; k < width; k++) out[i + k] = bytes[i + width - 1 - k];
  return out;
}

// ---- the model -----------------------------------------------------------------------------------------

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/** The folded LSTM of an .npz (and a fused model's n-gram branch). Same steps as the Python runtime's: a message
 * with L word ids starts from the state after maxlen - L pads (`primed_h`, `primed_c`) and steps through its ids:
 * z = table[id] + h R, gates i, f, c, o. The i, f, o columns are halved so that one tanh gives every gate:
 * sigmoid(x) = 0.5 + 0.5 tanh(x / 2) (halving is exact). A step runs in WebAssembly SIMD where the platform
 * has it (float32, as the native kernel), else in plain JS (float64): see `kernel`. */
export class LstmModel {
  static fromArrays(arrays, where, kernel = "auto") {
    const need = (name) => arrays[name] ?? fail(`'${where}' is not an smsguard model: it has no '${name}' array`);
    let meta;
    try {
      meta = JSON.parse(need("meta").data);
    } catch {
      fail(`'${where}' is not an smsguard model: its meta is not JSON`);
    }
    if (meta.format !== NPZ_FORMAT || meta.gates !== "ifco" || meta.activation !== "tanh") fail(`'${where}' is an LSTM weights file this runtime cannot run: ${JSON.stringify(meta)}`);
    return new LstmModel(arrays, meta, where, need, kernel);
  }

  constructor(arrays, meta, where, need, kernel) {
    const recurrent = need("recurrent");
    const [u, gates] = recurrent.shape;
    const maxlen = meta.maxlen;
    this.units = u;
    this.maxlen = maxlen;
    const quantized = !arrays.table;
    const table = quantized ? need("table_q") : need("table");
    this.rows = table.shape[0];
    const bad = gates !== 4 * u || table.shape[1] !== 4 * u || need("dense_kernel").data.length !== u || need("primed_h").shape.join() !== `${maxlen + 1},${u}`
      || need("primed_c").shape.join() !== `${maxlen + 1},${u}` || (quantized && need("table_scale").data.length !== this.rows);
    if (bad) fail(`'${where}' has inconsistent array shapes for an LSTM of ${u} units and maxlen ${maxlen}`);
    this.table = table.data; // float32 or int8 rows of 4u
    this.scale = quantized ? need("table_scale").data : null;
    this.half = Float64Array.from({ length: 4 * u }, (_, j) => (j >= 2 * u && j < 3 * u ? 1 : 0.5));
    this.dense = Float64Array.from(need("dense_kernel").data);
    this.denseBias = need("dense_bias").data[0];
    this.primedH = need("primed_h").data;
    this.primedC = need("primed_c").data;
    this.ngramLength = 0;
    if ("ngram_length" in meta) {
      this.ngramScores = Float64Array.from(need("ngram_scores").data);
      this.ngramBias = need("ngram_bias").data[0];
      this.ngramLength = meta.ngram_length;
      if (!this.ngramScores.length || this.ngramScores[0] !== 0) fail(`'${where}' has malformed n-gram scores: expected a vector whose first (padding) score is 0`);
    }
    if (!["auto", "wasm", "js"].includes(kernel)) throw new TypeError(`kernel must be "auto", "wasm" or "js", found ${JSON.stringify(kernel)}`);
    const wasm = kernel === "js" ? null : WasmKernel.create(this, recurrent.data);
    if (!wasm && kernel === "wasm") fail(`WebAssembly SIMD is not available here${u % 8 ? ` (or the model's ${u} units are not a multiple of 8)` : ""}: use kernel "js" or "auto"`);
    this.kernel = wasm ?? new JsKernel(this, recurrent.data);
    if (wasm) this.table = null; // the kernel holds its own copy
  }

  /** Refuse a vocabulary whose ids this model has no row for. */
  checkIds(vocabulary) {
    if (vocabulary.ngrams && this.ngramScores.length < vocabulary.ngrams.buckets + 1) fail(`the model has ${this.ngramScores.length - 1} n-gram buckets, the vocabulary hashes into ${vocabulary.ngrams.buckets}`);
  }

  /** The probability of one row of model input (`maxlen` front-padded word ids, then the n-gram ids). */
  probability(ids) {
    const { maxlen, units: u, kernel } = this;
    if (ids.length !== maxlen + this.ngramLength) throw new RangeError(`expected ${maxlen + this.ngramLength} ids, found ${ids.length}`);
    let length = 0;
    for (let t = 0; t < maxlen; t++) {
      if (ids[t] < 0 || ids[t] >= this.rows) throw new RangeError(`word id ${ids[t]} at ${t} is outside 0..${this.rows - 1}`);
      if (ids[t] !== 0) length++;
    }
    const first = (maxlen - length) * u;
    kernel.h.set(this.primedH.subarray(first, first + u));
    kernel.c.set(this.primedC.subarray(first, first + u));
    for (let t = maxlen - length; t < maxlen; t++) kernel.step(ids[t]);
    const h = kernel.h;
    let logit = this.denseBias;
    for (let j = 0; j < u; j++) logit += h[j] * this.dense[j];
    const word = sigmoid(logit);
    return this.ngramLength ? (word + this.ngramProbability(ids)) * 0.5 : word;
  }

  ngramProbability(ids) {
    const scores = this.ngramScores;
    let total = 0;
    let count = 0;
    for (let t = this.maxlen; t < ids.length; t++) {
      const id = ids[t];
      if (id === 0) continue;
      if (id < 0 || id >= scores.length) throw new RangeError(`n-gram id ${id} at ${t} is outside 0..${scores.length - 1}`);
      total += scores[id];
      count++;
    }
    return sigmoid(this.ngramBias + total / Math.max(count, 1));
  }
}

/** A step in plain JS, float64: z += h R (R transposed: a dot product per gate column, on contiguous rows, four
 * columns a pass), then the gates. Measured on Node 20, u = 64: as fast as any other layout tried (eight columns,
 * k unrolled, interleaved blocks), 1.5x faster than float32 rows or a row-major axpy; about 0.5 ns a
 * multiply-add, where plain JS stops, so about 8x the native kernel's time: hence WasmKernel. */
class JsKernel {
  constructor(model, recurrent) {
    const u = model.units;
    this.name = "js";
    this.units = u;
    this.table = model.table;
    this.scale = model.scale;
    this.half = model.half;
    this.r = new Float64Array(4 * u * u);
    for (let k = 0; k < u; k++) for (let j = 0; j < 4 * u; j++) this.r[j * u + k] = recurrent[k * 4 * u + j] * model.half[j];
    this.z = new Float64Array(4 * u);
    this.h = new Float64Array(u);
    this.c = new Float64Array(u);
  }

  step(id) {
    const { z, h, c, units: u, r } = this;
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
      const cj = f * c[j] + i * tanh(z[2 * u + j]);
      c[j] = cj;
      h[j] = o * tanh(cj);
    }
  }
}

// The table's row of a token, dequantized (q x scale) and halved for i, f, o: one function per table type, so
// that each stays monomorphic when a page loads both models.
function lookUpQuantized(z, table, scale, row, u) {
  const half = 0.5 * scale;
  for (let j = 0; j < 2 * u; j++) z[j] = table[row + j] * half;
  for (let j = 2 * u; j < 3 * u; j++) z[j] = table[row + j] * scale;
  for (let j = 3 * u; j < 4 * u; j++) z[j] = table[row + j] * half;
}

function lookUpFloat(z, table, half, row) {
  for (let j = 0; j < half.length; j++) z[j] = table[row + j] * half[j];
}

// Eigen's rational tanh (the native kernel's, and ONNX Runtime's MLAS): within 3e-7 of tanh; in V8, 2.5 times
// faster than Math.tanh.
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

// ---- the WebAssembly SIMD step --------------------------------------------------------------------------
// The same step in float32 SIMD (f32x4; WebAssembly SIMD is in Node >= 16.4, Chrome 91, Firefox 89, Safari 16.4),
// generated here as bytes, so the module stays one file with no build. z += h R over row-major R (halved), eight
// vector accumulators a pass of 32 columns, each column summed in k order as the native kernel does; then the
// gates with the same rational tanh. Memory: z (4u floats), h (u), c (u), R (u x 4u), from byte 0.

const leb = (n) => {
  const out = [];
  do out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
  while ((n >>>= 7));
  return out;
};
const sleb = (n) => {
  const out = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};
const wasmVec = (items) => [...leb(items.length), ...items.flat()];
const wasmSection = (id, body) => [id, ...leb(body.length), ...body];
const op = {
  get: (i) => [0x20, i], set: (i) => [0x21, i], tee: (i) => [0x22, i], i32: (n) => [0x41, ...sleb(n)], call: (f) => [0x10, f],
  add: [0x6a], shl: [0x74], ltU: [0x49], brIf: [0x0d, 0], loop: [0x03, 0x40], end: [0x0b],
  load: (offset) => [0xfd, 0x00, 4, ...leb(offset)], store: (offset) => [0xfd, 0x0b, 4, ...leb(offset)], splatLoad: [0xfd, 0x09, 2, 0],
  splat: (x) => [0x43, ...new Uint8Array(Float32Array.of(x).buffer), 0xfd, 0x13],
  load8x8: [0xfd, 0x01, 3, 0], extendLow: [0xfd, 0xa7, 1], extendHigh: [0xfd, 0xa8, 1], convert: [0xfd, 0xfa, 1], fsplat: [0xfd, 0x13],
  fadd: [0xfd, 0xe4, 1], fmul: [0xfd, 0xe6, 1], fdiv: [0xfd, 0xe7, 1], fmin: [0xfd, 0xe8, 1], fmax: [0xfd, 0xe9, 1],
};

function tanhBody() {
  const { get, set, tee, splat, fmul, fadd } = op;
  const poly = (coefficients) => [splat(coefficients[0]), coefficients.slice(1).map((k) => [get(1), fmul, splat(k), fadd])];
  return [get(0), splat(TANH_CLAMP), op.fmin, splat(-TANH_CLAMP), op.fmax, tee(0), get(0), fmul, set(1), poly(TANH_P), get(0), fmul, poly(TANH_Q), op.fdiv, op.end];
}

// step(z, h, c, r, u); locals: 5 j, 6 row bytes, 7 r pointer, 8 h pointer, 9 h end, 10..12 u x 4, 8, 12 bytes;
// 13 h[k] splat, 14..21 accumulators (then i, f, g, o, c).
function stepBody() {
  const { get, set, tee, i32, load, store, add, fmul, fadd } = op;
  const acc = [0, 1, 2, 3, 4, 5, 6, 7];
  const gate = (offset, local, sigmoid) => [get(0), get(5), add, ...(offset ? [get(offset), add] : []), load(0), op.call(0), ...(sigmoid ? [op.splat(0.5), fmul, op.splat(0.5), fadd] : []), set(local)];
  const product = [
    get(4), i32(2), op.shl, tee(10), i32(2), op.shl, set(6), get(10), get(10), add, set(11), get(11), get(10), add, set(12), get(1), get(10), add, set(9),
    i32(0), set(5), op.loop,
    acc.map((a) => [get(0), get(5), add, load(16 * a), set(14 + a)]),
    get(3), get(5), add, set(7), get(1), set(8), op.loop,
    get(8), op.splatLoad, set(13),
    acc.map((a) => [get(14 + a), get(7), load(16 * a), get(13), fmul, fadd, set(14 + a)]),
    get(7), get(6), add, set(7), get(8), i32(4), add, tee(8), get(9), op.ltU, op.brIf, op.end,
    acc.map((a) => [get(0), get(5), add, get(14 + a), store(16 * a)]),
    get(5), i32(128), add, tee(5), get(6), op.ltU, op.brIf, op.end,
  ];
  const gates = [
    i32(0), set(5), op.loop,
    gate(0, 14, true), gate(10, 15, true), gate(11, 16, false), gate(12, 17, true),
    get(2), get(5), add, get(15), get(2), get(5), add, load(0), fmul, get(14), get(16), fmul, fadd, tee(18), store(0),
    get(1), get(5), add, get(17), get(18), op.call(0), fmul, store(0),
    get(5), i32(16), add, tee(5), get(10), op.ltU, op.brIf, op.end,
  ];
  return [product, gates, op.end];
}

// lookupQ(z, row, scale, half, n): z[j] = (q[j] x scale) x half[j] for the n int8 columns of a table row.
function lookupBody() {
  const { get, set, tee, i32, add, fmul } = op;
  const at = (base) => [get(base), get(5), i32(2), op.shl, add];
  const half = (extend, offset) => [at(0), get(6), extend, op.convert, get(7), fmul, at(3), op.load(offset), fmul, op.store(offset)];
  return [
    get(2), op.fsplat, set(7), i32(0), set(5), op.loop,
    get(1), get(5), add, op.load8x8, set(6), half(op.extendLow, 0), half(op.extendHigh, 16),
    get(5), i32(8), add, tee(5), get(4), op.ltU, op.brIf, op.end, op.end,
  ];
}

// copy(to, from, bytes), 16 bytes at a time: a float table's row (halved at load) into z.
function copyBody() {
  const { get, tee, i32, add } = op;
  return [i32(0), op.set(3), op.loop, get(0), get(3), add, get(1), get(3), add, op.load(0), op.store(0), get(3), i32(16), add, tee(3), get(2), op.ltU, op.brIf, op.end, op.end];
}

function wasmModule() {
  const body = (locals, code) => {
    const bytes = [...wasmVec(locals), ...code.flat(Infinity)];
    return [...leb(bytes.length), ...bytes];
  };
  const I32 = 0x7f;
  const V128 = 0x7b;
  const text = (s) => wasmVec([...s].map((c) => c.charCodeAt(0)));
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...wasmSection(1, wasmVec([[0x60, 1, V128, 1, V128], [0x60, 5, I32, I32, I32, I32, I32, 0], [0x60, 5, I32, I32, 0x7d, I32, I32, 0], [0x60, 3, I32, I32, I32, 0]])),
    ...wasmSection(2, wasmVec([[...text("env"), ...text("memory"), 0x02, 0x00, 0x01]])),
    ...wasmSection(3, wasmVec([[0], [1], [2], [3]])),
    ...wasmSection(7, wasmVec([[...text("step"), 0x00, 1], [...text("lookupQ"), 0x00, 2], [...text("copy"), 0x00, 3]])),
    ...wasmSection(10, wasmVec([body([[1, V128]], tanhBody()), body([[8, I32], [9, V128]], stepBody()), body([[1, I32], [2, V128]], lookupBody()), body([[1, I32]], copyBody())])),
  ]);
}

class WasmKernel {
  /** The kernel for `model`, or null where WebAssembly SIMD is missing (or refused, as by a page's CSP). */
  static create(model, recurrent) {
    const u = model.units;
    if (u % 8 !== 0 || typeof WebAssembly !== "object") return null;
    try {
      const bytes = 40 * u + 16 * u * u + model.table.length * model.table.BYTES_PER_ELEMENT;
      const memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) });
      const instance = new WebAssembly.Instance(new WebAssembly.Module(wasmModule()), { env: { memory } });
      return new WasmKernel(model, recurrent, memory, instance.exports);
    } catch {
      return null;
    }
  }

  // Memory, in bytes from 0: z (16u), h (4u), c (4u), half (16u), R (16u^2, halved), the table (halved when float).
  constructor(model, recurrent, memory, exports) {
    const u = model.units;
    const buffer = memory.buffer;
    Object.assign(this, { name: "wasm-simd", units: u, exports, scale: model.scale, at: { z: 0, h: 16 * u, c: 20 * u, half: 24 * u, r: 40 * u } });
    this.at.table = this.at.r + 16 * u * u;
    this.z = new Float32Array(buffer, 0, 4 * u);
    this.h = new Float32Array(buffer, this.at.h, u);
    this.c = new Float32Array(buffer, this.at.c, u);
    new Float32Array(buffer, this.at.half, 4 * u).set(model.half);
    const r = new Float32Array(buffer, this.at.r, 4 * u * u);
    for (let k = 0; k < u; k++) for (let j = 0; j < 4 * u; j++) r[k * 4 * u + j] = recurrent[k * 4 * u + j] * model.half[j];
    if (model.scale) new Int8Array(buffer, this.at.table, model.table.length).set(model.table);
    else new Float32Array(buffer, this.at.table, model.table.length).set(model.table.map((x, i) => x * model.half[i % (4 * u)]));
  }

  step(id) {
    const { units: u, at, exports } = this;
    if (this.scale) exports.lookupQ(at.z, at.table + id * 4 * u, this.scale[id], at.half, 4 * u);
    else exports.copy(at.z, at.table + id * 16 * u, 16 * u);
    exports.step(at.z, at.h, at.c, at.r, u);
  }
}
