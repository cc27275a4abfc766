// Drives the demo page in headless Chromium (Debian's, through puppeteer-core) with every request that is not to
// 127.0.0.1 blocked, and runs smsguard.mjs in it: the conformance file on every model with both kernels, the time of
// each message alone after a warm-up, a tampered file and bad input; then types a message and reads both columns of
// the page, and takes a screenshot. Prints one JSON object on stdout.
//   node web/test/js-check.mjs URL CONFORMANCE.json TEXTS.json SCREENSHOT.png [CHROMIUM] [ROUNDS]
// With "-" for CONFORMANCE.json and SCREENSHOT.png it only times the messages (benchmarks/ports_js.py).
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [url, conformanceFile, textsFile, screenshot, executablePath = "/usr/bin/chromium", rounds = "3"] = process.argv.slice(2);
const conformance = conformanceFile === "-" ? null : JSON.parse(readFileSync(conformanceFile, "utf8"));
const texts = JSON.parse(readFileSync(textsFile, "utf8"));
const local = (address) => ["127.0.0.1", "localhost"].includes(new URL(address).hostname);
const blocked = [];
const errors = [];

// In the page: the conformance cases through every model and kernel, raw (the caller compares them with Python).
async function runConformance(spec) {
  const { Bundle } = await import("/smsguard.mjs");
  const bundle = await Bundle.load("/bundle/");
  const out = { ids: null, models: {} };
  for (const model of spec.models) {
    for (const kernel of ["wasm", "js"]) {
      const classifier = await bundle.classifier(model, kernel);
      out.ids ??= spec.cases.map((c) => Array.from(classifier.encode(c.text)));
      out.models[`${model} ${kernel}`] = spec.cases.map((c) => classifier.classify(c.text));
    }
  }
  return out;
}

// In the page: each message alone, after at least 2 s of warm-up on all of them; the median of the rounds' percentiles.
async function timeMessages(texts, rounds) {
  const { Classifier } = await import("/smsguard.mjs");
  const loading = performance.now();
  const classifier = await Classifier.load("/bundle/");
  const loadMs = performance.now() - loading;
  let sink = 0;
  const start = performance.now();
  do for (const text of texts) sink += classifier.probability(text);
  while (performance.now() - start < 2000);
  const at = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
  const figures = { p50: [], p90: [], p99: [], bulk: [] };
  for (let round = 0; round < rounds; round++) {
    const times = new Float64Array(texts.length);
    for (let k = 0; k < texts.length; k++) {
      const t0 = performance.now();
      sink += classifier.probability(texts[k]);
      times[k] = (performance.now() - t0) * 1000;
    }
    times.sort();
    figures.p50.push(at(times, 0.5));
    figures.p90.push(at(times, 0.9));
    figures.p99.push(at(times, 0.99));
    const t0 = performance.now();
    for (const text of texts) sink += classifier.probability(text);
    figures.bulk.push(texts.length / ((performance.now() - t0) / 1000));
  }
  return {
    model: classifier.model, kernel: classifier.kernel, messages: texts.length, rounds, isolated: globalThis.crossOriginIsolated, finite: Number.isFinite(sink), load_ms: loadMs,
    p50_us: median(figures.p50), p90_us: median(figures.p90), p99_us: median(figures.p99), bulk_msgs_per_s: median(figures.bulk),
  };
}

// In the page: a vocabulary changed by one byte on its way in, and texts that are not strings.
async function refusals() {
  const { Bundle, IntegrityError } = await import("/smsguard.mjs");
  const reader = async (name) => {
    const bytes = new Uint8Array(await (await fetch(`/bundle/${name}`)).arrayBuffer());
    if (name === "vocab.json") bytes[bytes.length - 2] ^= 1;
    return bytes;
  };
  const out = {};
  try {
    await Bundle.load(reader);
  } catch (error) {
    out.tampered = { name: error.name, integrity: error instanceof IntegrityError, message: error.message };
  }
  for (const value of [null, undefined, 42]) {
    try {
      window.smsguard.full.classifier.classify(value);
    } catch (error) {
      out[String(value)] = `${error.name}: ${error.message}`;
    }
  }
  return out;
}

const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 820 });
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    if (request.url().startsWith("data:") || request.url().startsWith("blob:") || local(request.url())) request.continue();
    else {
      blocked.push(`${request.method()} ${request.url()}`);
      request.abort();
    }
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true], body[data-error]", { timeout: 120000 });
  const result = { userAgent: await page.evaluate(() => navigator.userAgent), version: await browser.version() };
  result.pageError = await page.evaluate(() => document.body.dataset.error ?? null);
  if (!result.pageError && !conformance) result.timing = await page.evaluate(timeMessages, texts, Number(rounds));
  else if (!result.pageError) {
    result.conformance = await page.evaluate(runConformance, conformance);
    result.timing = await page.evaluate(timeMessages, texts, Number(rounds));
    result.refusals = await page.evaluate(refusals);
    await page.type("#text", "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461.");
    await page.click("#classify");
    await page.waitForFunction(() => document.getElementById("label").textContent !== "–");
    result.shown = await page.evaluate(() => {
      const text = (id) => document.getElementById(id).textContent;
      return { probability: text("probability"), label: text("label"), mediapipe: { probability: text("mp-probability"), label: text("mp-label") }, status: text("status") };
    });
    await page.screenshot({ path: screenshot });
  }
  result.blocked = blocked;
  result.errors = errors;
  process.stdout.write(JSON.stringify(result));
} finally {
  await browser.close();
}
