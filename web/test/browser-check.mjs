// Drives the demo page in headless Chromium (Debian's, through puppeteer-core) with every request that is
// not to 127.0.0.1 blocked: runs texts through every MediaPipe client model and the id probe, types a message
// and reads both columns (the full model's, the MediaPipe client's), takes a screenshot. Prints one JSON object
// on stdout. (web/test/js-check.mjs drives the page's full model, smsguard.mjs.)
//   node web/test/browser-check.mjs URL TEXTS.json SCREENSHOT.png [CHROMIUM]
import { readFileSync } from "node:fs";
import puppeteer from "puppeteer-core";

const [url, textsFile, screenshot, executablePath = "/usr/bin/chromium"] = process.argv.slice(2);
const texts = JSON.parse(readFileSync(textsFile, "utf8"));
const local = (address) => ["127.0.0.1", "localhost"].includes(new URL(address).hostname);
const blocked = [];
const errors = [];

const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 760 });
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    if (request.url().startsWith("data:") || request.url().startsWith("blob:") || local(request.url())) request.continue();
    else { blocked.push(`${request.method()} ${request.url()}`); request.abort(); }
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]", { timeout: 120000 });
  const result = await page.evaluate(async (texts) => {
    const out = { userAgent: navigator.userAgent, models: {} };
    for (const name of [...window.smsguard.config.models, window.smsguard.probe]) {
      await window.smsguard.useModel(name);
      window.smsguard.classifyAll(texts.slice(0, 5)); // warm-up, not timed
      out.models[name] = window.smsguard.classifyAll(texts);
    }
    await window.smsguard.useModel(window.smsguard.config.models[0]);
    return out;
  }, texts);
  await page.type("#text", "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461.");
  await page.click("#classify");
  await page.waitForFunction(() => document.getElementById("label").textContent !== "–");
  result.shown = await page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent;
    return { probability: text("probability"), label: text("label"), mediapipe: { probability: text("mp-probability"), label: text("mp-label") } };
  });
  await page.screenshot({ path: screenshot });
  result.blocked = blocked;
  result.errors = errors;
  result.version = await browser.version();
  process.stdout.write(JSON.stringify(result));
} finally {
  await browser.close();
}
