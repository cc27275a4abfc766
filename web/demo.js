// smsguard's browser demo: the bundle's full model in smsguard.mjs (the default), and its MediaPipe client model
// (the word branch) in @mediapipe/tasks-text beside it, all from this server.
// window.smsguard is what the browser tests drive: config, useModel(name) and classifyAll(texts) for the MediaPipe
// client (scores by category index; the probe's are its ids), full.use(name) and full.classifyAll(texts).
import { Bundle } from "/smsguard.mjs";

const $ = (id) => document.getElementById(id);
const config = await (await fetch("/bundle/config.json")).json();
const timed = (run) => {
  const start = performance.now();
  const value = run();
  return [value, performance.now() - start];
};

// ---- the full model ------------------------------------------------------------------------------------------

let bundle = null;
let full = null;
try {
  bundle = await Bundle.load("/bundle/");
  full = await bundle.classifier(config.npz[0]);
} catch (error) {
  $("status").textContent = `The full model cannot run: ${error.message}`;
  document.body.dataset.error = error.message;
  throw error;
}

async function useFull(name) {
  full = await bundle.classifier(name);
}

function showFull(text) {
  const [result, ms] = timed(() => full.classify(text));
  $("probability").textContent = result.probability.toFixed(6);
  $("label").textContent = result.label;
  $("label").className = result.label;
  $("threshold").textContent = `${full.labels[1]} from ${full.threshold.toPrecision(6)} on (${full.kernel} kernel)`;
  $("time").textContent = `${ms.toFixed(2)} ms`;
}

// ---- the MediaPipe client --------------------------------------------------------------------------------------

let fileset = null;
let classifier = null;
let TextClassifier = null;
let current = null;

async function useModel(name) {
  if (classifier) classifier.close();
  classifier = await TextClassifier.createFromOptions(fileset, { baseOptions: { modelAssetPath: `/bundle/${name}` } });
  current = name;
}

// Every score of the model's head, by category index (one for a client model; the ids for the probe).
function scores(text) {
  const out = [];
  for (const category of classifier.classify(text).classifications[0].categories) out[category.index] = category.score;
  return out;
}

function classifyAll(texts) {
  return texts.map((text) => {
    const [values, ms] = timed(() => scores(text));
    return { scores: values, ms };
  });
}

function showMediaPipe(text) {
  if (!classifier) return;
  const [values, ms] = timed(() => scores(text));
  const threshold = config.thresholds[current] ?? config.threshold;
  const label = values[0] >= threshold ? config.labels[1] : config.labels[0];
  $("mp-probability").textContent = values[0].toFixed(6);
  $("mp-label").textContent = label;
  $("mp-label").className = label;
  $("mp-threshold").textContent = `${config.labels[1]} from ${threshold.toPrecision(6)} on`;
  $("mp-time").textContent = `${ms.toFixed(2)} ms`;
}

if (config.models.length) {
  const tasks = await import("/vendor/tasks-text/text_bundle.mjs");
  TextClassifier = tasks.TextClassifier;
  fileset = await tasks.FilesetResolver.forTextTasks("/vendor/tasks-text/wasm");
  await useModel(config.models[0]);
} else {
  $("mp-threshold").textContent = "This bundle has no MediaPipe client model (train with --preset mediapipe for one).";
}

// ---- the page --------------------------------------------------------------------------------------------------

function show() {
  const text = $("text").value;
  showFull(text);
  showMediaPipe(text);
}

for (const name of config.npz) $("model").add(new Option(name, name));
for (const name of config.models) $("mp-model").add(new Option(name, name));
$("model").addEventListener("change", async (event) => {
  await useFull(event.target.value);
  show();
});
$("mp-model").addEventListener("change", async (event) => {
  await useModel(event.target.value);
  show();
});
$("classify").addEventListener("click", show);
$("text").addEventListener("input", show);
for (const id of ["model", "text", "classify"]) $(id).disabled = false;
$("mp-model").disabled = !config.models.length;
$("status").textContent = `Ready: smsguard ${config.smsguard_version}; the full model in smsguard.mjs (${full.kernel})${config.models.length ? " and the MediaPipe client in MediaPipe Tasks Text" : ""}, loaded from this server.`;
window.smsguard = {
  config,
  useModel,
  classifyAll,
  probe: config.probe,
  full: {
    use: useFull,
    get classifier() {
      return full;
    },
    classifyAll: (texts) => texts.map((text) => {
      const [result, ms] = timed(() => full.classify(text));
      return { ...result, ms };
    }),
  },
};
document.body.dataset.ready = "true";
