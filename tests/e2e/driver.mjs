// Drives headless Chromium (Debian's /usr/bin/chromium through playwright-core) for run_e2e.py.
//
// Protocol: one JSON object per line on stdin, one answer per line on stdout:
//   {"id": 1, "op": "open", "url": "http://127.0.0.1:P/player.html?..."}
//       a new browser context (no cache, no cookies) with one page at url
//   {"id": 2, "op": "state"}     -> {"page": window.e2e, "net": [...], "console": [...]}
//   {"id": 3, "op": "screenshot", "path": "/tmp/x.png"}
//   {"id": 4, "op": "close"}     closes the context
//   {"id": 5, "op": "quit"}      closes everything and exits (as does the end of stdin)
// Answers: {"id": N, "ok": true, "result": ...} or {"id": N, "ok": false, "error": "..."}.
// net: every request the page made, as the network saw it, redirect hops included:
//   {t, method, url, host, type, status, location, redirectedFrom, steerdCdn, servedBy,
//    cacheStatus, acao, failure, note (why some of it is missing)}
// Environment: CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import readline from "node:readline";

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";
// Quiet on a closed network; autoplay without a gesture (the video is muted as well).
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
  "--mute-audio",
];

let browser = null;
let ctx = null;
let page = null;
let t0 = 0;
let net = [];
let consoleLines = [];
const pending = new Set();

const hostOf = (u) => {
  try {
    return new URL(u).host;
  } catch (e) {
    return "";
  }
};

function record(req, failure) {
  const entry = {
    t: Date.now() - t0,
    method: req.method(),
    url: req.url(),
    host: hostOf(req.url()),
    type: req.resourceType(),
    status: 0,
    location: null,
    redirectedFrom: req.redirectedFrom() ? req.redirectedFrom().url() : null,
    steerdCdn: null,
    servedBy: null,
    cacheStatus: null,
    acao: null,
    failure: failure,
    note: null,
  };
  if (net.length >= 5000) return;
  net.push(entry);
  const p = (async () => {
    const resp = await req.response();
    if (!resp) {
      entry.note = "no response";
      return;
    }
    entry.status = resp.status();
    let h;
    try {
      h = await resp.allHeaders();
    } catch (e) {
      h = resp.headers(); // the raw headers may be gone; these are enough for ours
      entry.note = "allHeaders: " + ((e && e.message) || e);
    }
    entry.location = h["location"] || null;
    entry.steerdCdn = h["x-steerd-cdn"] || null;
    entry.servedBy = h["x-served-by"] || null;
    entry.cacheStatus = h["x-cache-status"] || null;
    entry.acao = h["access-control-allow-origin"] || null;
  })()
    .catch((e) => {
      entry.note = "response: " + ((e && e.message) || e);
    })
    .finally(() => pending.delete(p));
  pending.add(p);
}

async function closeContext() {
  const c = ctx;
  ctx = null;
  page = null;
  if (c) await c.close().catch(() => {});
}

async function closeBrowser() {
  await closeContext();
  const b = browser;
  browser = null;
  if (b) await b.close().catch(() => {});
}

// One browser for the whole run (Playwright gives it a temporary profile under TMPDIR); each
// open gets a new context: its own cache, cookies and storage, as a fresh profile would.
async function open(msg) {
  await closeContext();
  if (browser && !browser.isConnected()) browser = null;
  if (!browser) {
    browser = await chromium.launch({
      executablePath: EXECUTABLE,
      headless: true,
      args: FLAGS,
      timeout: 30000,
      handleSIGINT: true,
      handleSIGTERM: true,
      handleSIGHUP: true,
    });
  }
  ctx = await browser.newContext({ viewport: { width: 800, height: 450 } });
  page = await ctx.newPage();
  net = [];
  consoleLines = [];
  t0 = Date.now();
  page.on("requestfinished", (r) => record(r, null));
  page.on("requestfailed", (r) => record(r, (r.failure() || {}).errorText || "failed"));
  page.on("console", (m) => {
    if (consoleLines.length < 300) consoleLines.push(Date.now() - t0 + " " + m.type() + ": " + m.text());
  });
  page.on("pageerror", (e) => {
    if (consoleLines.length < 300) consoleLines.push(Date.now() - t0 + " pageerror: " + e.message);
  });
  await page.goto(msg.url, { waitUntil: "load", timeout: 15000 });
  return { browser: browser.version() };
}

async function state() {
  if (!page) throw new Error("no page open");
  const p = await page.evaluate(() => window.e2e || null);
  // Requests that finished meanwhile still wait for their response details: wait for all,
  // then copy without yielding, so that every entry in the answer is complete.
  while (pending.size) await Promise.all([...pending]);
  return { page: p, net: structuredClone(net), console: consoleLines.slice() };
}

async function handle(msg) {
  switch (msg.op) {
    case "open":
      return open(msg);
    case "state":
      return state();
    case "screenshot":
      if (!page) throw new Error("no page open");
      await page.screenshot({ path: msg.path });
      return null;
    case "close":
      await closeContext();
      return null;
    case "quit":
      await closeBrowser();
      return null;
    default:
      throw new Error("unknown op " + msg.op);
  }
}

const reply = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      reply({ id: null, ok: false, error: "bad JSON: " + e.message });
      return;
    }
    try {
      const result = await handle(msg);
      reply({ id: msg.id, ok: true, result: result === undefined ? null : result });
    } catch (e) {
      reply({ id: msg.id, ok: false, error: String((e && e.message) || e) });
    }
    if (msg.op === "quit") process.exit(0);
  });
});
rl.on("close", () => {
  chain.then(closeBrowser).then(() => process.exit(0));
});
