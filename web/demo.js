// smsguard's browser demo: the bundle's MediaPipe client model in @mediapipe/tasks-text, all local.
// window.smsguard is what the browser test drives: ready, useModel(name), classifyAll(texts).
import { FilesetResolver, TextClassifier } from "/vendor/tasks-text/text_bundle.mjs";

const $ = (id) => document.getElementById(id);
const config = await (await fetch("/bundle/config.json")).json();
const fileset = await FilesetResolver.forTextTasks("/vendor/tasks-text/wasm");
let classifier = null;
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
    const start = performance.now();
    const values = scores(text);
    return { scores: values, ms: performance.now() - start };
  });
}

function show() {
  const text = $("text").value;
  const start = performance.now();
  const probability = scores(text)[0];
  const ms = performance.now() - start;
  const threshold = config.thresholds[current] ?? config.threshold;
  const label = probability >= threshold ? config.labels[1] : config.labels[0];
  $("probability").textContent = probability.toFixed(6);
  $("label").textContent = label;
  $("label").className = label;
  $("threshold").textContent = `(spam from ${threshold} on)`;
  $("time").textContent = `${ms.toFixed(2)} ms`;
}

for (const name of config.models) $("model").add(new Option(name, name));
await useModel(config.models[0]);
$("model").addEventListener("change", async (event) => { await useModel(event.target.value); show(); });
$("classify").addEventListener("click", show);
$("text").addEventListener("input", show);
for (const id of ["model", "text", "classify"]) $(id).disabled = false;
$("status").textContent = `Ready: smsguard ${config.smsguard_version}, MediaPipe Tasks Text, model loaded from this server.`;
window.smsguard = { config, useModel, classifyAll, probe: config.probe };
document.body.dataset.ready = "true";
