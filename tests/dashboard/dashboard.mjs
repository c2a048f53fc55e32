#!/usr/bin/env node
// The status page in a real browser: Debian's headless Chromium driven by playwright-core,
// against the Worker under `wrangler dev`. Run by tests/e2e/dashboard.rs, which prepares the
// data and answers this script's requests to break and restore Upstash:
//
//   this script prints  NEED break-upstash | NEED restore-upstash   and waits for a line on stdin
//   it ends with        RESULT {"…": …}                              (exit 0), or fails (exit 1)
//
// Settings (environment):
//   TM_DASH_URL            the Worker, e.g. http://127.0.0.1:28787
//   TM_DASH_READ_KEY       the read key to sign in with
//   TM_DASH_SECRETS_FILE   a file with one secret per line (every token, the other keys): none
//                          may appear in the page, its storage or any request or response
//   TM_DASH_EXPECT_FILE    JSON {"accounts": {"NAME": "state", …}, "mains": [..]}
//   TM_DASH_OUT_DIR        where screenshots go
//   TM_DASH_CHROMIUM       the browser (default /usr/bin/chromium)

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";

const started = Date.now();
const env = (name) => {
  const value = process.env[name];
  if (!value) fail(`${name} is not set (tests/e2e/dashboard.rs sets it)`);
  return value;
};

function fail(message) {
  process.stderr.write(`dashboard test failed: ${message}\n`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const chromiumPath = process.env.TM_DASH_CHROMIUM || "/usr/bin/chromium";
if (!existsSync(chromiumPath)) {
  fail(`${chromiumPath} is missing: install Debian's chromium (./scripts/test.sh does: apt-get install chromium)`);
}
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  fail(`playwright-core is not installed (npm install, from package-lock.json): ${e.message}`);
}

const base = env("TM_DASH_URL");
const readKey = env("TM_DASH_READ_KEY");
const secrets = readFileSync(env("TM_DASH_SECRETS_FILE"), "utf8").split("\n").filter((s) => s.length >= 8);
const expected = JSON.parse(readFileSync(env("TM_DASH_EXPECT_FILE"), "utf8"));
const outDir = env("TM_DASH_OUT_DIR");
mkdirSync(outDir, { recursive: true });
check(secrets.length > 0, "no secrets to look for");

// Requests to the test harness (Rust), one at a time.
const stdin = createInterface({ input: process.stdin });
const answers = stdin[Symbol.asyncIterator]();
async function need(what) {
  process.stdout.write(`NEED ${what}\n`);
  const answer = await answers.next();
  check(!answer.done && answer.value.trim() === "DONE", `the harness did not do ${what}: ${answer.value}`);
}

const step = (name) => process.stderr.write(`  [${((Date.now() - started) / 1000).toFixed(1)} s] ${name}\n`);

// ------------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  // Chromium's sandbox cannot start as root (CI runs as root).
  args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
});
const watchdog = setTimeout(() => {
  process.stderr.write("dashboard test failed: timed out after 180 s\n");
  browser.close().finally(() => process.exit(1));
}, 180_000);

const traffic = []; // every request and response the page made, with headers and bodies
const problems = [];

try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.clock.install();
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on("console", (m) => {
    // Failed loads are checked by URL below (the refused key's 401s and the failing
    // Upstash's 502 are meant to happen).
    if (m.type() === "error" && !/^Failed to load resource/.test(m.text())) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (request) => {
    traffic.push({ request, headers: request.allHeaders(), body: request.postData() ?? "" });
  });
  page.on("response", (response) => {
    const entry = traffic.find((t) => t.request === response.request());
    const path = new URL(response.url()).pathname;
    const allowed = (response.status() === 401 && (path.startsWith("/v1/") || path === "/")) ||
      (response.status() === 502 && path === "/v1/status") ||
      (response.status() === 404 && path === "/favicon.ico"); // Chrome asks for it on the JSON answer
    if (response.status() >= 400 && !allowed) problems.push(`${response.status()} from ${response.url()}`);
    if (entry) {
      entry.responseHeaders = response.allHeaders();
      entry.responseBody = response.text().catch(() => "");
    }
  });

  const apiRequests = () =>
    traffic.filter((t) => new URL(t.request.url()).pathname.startsWith("/v1/")).length;
  const text = async (selector) => (await page.locator(selector).innerText()).trim();

  // 1. The page and its headers, at /dashboard and at / for a browser. ------------------------
  step("open /dashboard");
  const response = await page.goto(`${base}/dashboard`);
  check(response.status() === 200, `GET /dashboard answered ${response.status()}`);
  const headers = response.headers();
  const csp = headers["content-security-policy"] ?? "";
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    check(csp.includes(directive), `Content-Security-Policy lacks ${directive}: ${csp}`);
  }
  check(!csp.includes("unsafe-inline") && !csp.includes("unsafe-eval"), `CSP allows unsafe code: ${csp}`);
  check(headers["x-content-type-options"] === "nosniff", "no X-Content-Type-Options: nosniff");
  check(headers["referrer-policy"] === "no-referrer", "no Referrer-Policy: no-referrer");
  check((headers["content-type"] ?? "").startsWith("text/html"), `content-type ${headers["content-type"]}`);
  await page.locator("#signin").waitFor({ state: "visible" });
  check(await page.title() === "token-manager · status", `title ${await page.title()}`);

  const root = await page.goto(`${base}/`);
  check((root.headers()["content-type"] ?? "").startsWith("text/html"), "GET / in a browser is not the page");
  check(root.headers()["content-security-policy"] === csp, "the page at / has another policy");
  const seed = await page.goto(`${base}/?action=status`);
  check((seed.headers()["content-type"] ?? "").startsWith("application/json") && seed.status() === 401,
    `GET /?action=status in a browser must stay the seed's JSON (401 without a key), got ${seed.status()}`);
  await page.goto(`${base}/dashboard`);
  await page.locator("#signin").waitFor({ state: "visible" });

  // 2. A wrong key: a clear message, nothing kept. ---------------------------------------------
  step("sign in with a wrong key");
  await page.fill("#key", "this-is-not-the-read-key-0000000000000000");
  await page.click("#signin-button");
  await page.locator("#signin-message.bad").waitFor();
  const refused = await text("#signin-message");
  check(/refused/.test(refused) && /401/.test(refused) && /read key/.test(refused), `wrong-key message: ${refused}`);
  check(await page.locator("#dashboard").isHidden(), "the dashboard shows after a wrong key");
  check(await page.evaluate(() => sessionStorage.length) === 0, "a wrong key was stored");
  check(await page.inputValue("#key") === "", "the wrong key stays in the field");

  // 3. The right key: counts, every account with its state, the runs. -------------------------
  step("sign in with the read key");
  await page.fill("#key", readKey);
  await page.click("#signin-button");
  await page.locator("#dashboard").waitFor({ state: "visible" });
  await page.locator("[data-account]").first().waitFor();
  check(await page.evaluate(() => Object.keys(sessionStorage).join()) === "token-manager.read-key",
    "the key is not (only) in sessionStorage");
  check(await page.evaluate(() => localStorage.length) === 0, "something went to localStorage");
  check((await context.cookies()).length === 0, "the page set a cookie");
  check(await page.inputValue("#key") === "", "the key stays in the field after sign-in");
  check(!page.url().includes(readKey) && !page.url().includes("?"), `the URL carries something: ${page.url()}`);
  check(/Updated at \d\d:\d\d:\d\d/.test(await text("#updated")), `no "updated at": ${await text("#updated")}`);

  const shown = await page.$$eval("[data-account]", (rows) =>
    rows.map((r) => ({
      name: r.dataset.account,
      state: r.dataset.state,
      main: r.closest("[data-main]")?.dataset.main,
      words: r.querySelector(".tl-state").textContent,
    })));
  const expectedNames = Object.keys(expected.accounts).sort();
  check(JSON.stringify(shown.map((s) => s.name).sort()) === JSON.stringify(expectedNames),
    `accounts shown ${shown.map((s) => s.name)} != ${expectedNames}`);
  const words = { active: "active", renewal: "renewal window", soon: "expiring soon", expired: "expired", inactive: "inactive" };
  for (const s of shown) {
    const want = expected.accounts[s.name];
    check(s.state === want, `${s.name}: state ${s.state}, expected ${want}`);
    check(s.words.startsWith(words[want]), `${s.name}: the state in words is "${s.words}", expected "${words[want]}…"`);
    check(s.main === (s.name.startsWith("PAAPEX") ? `APEX_${s.name.slice(6, 12)}` : s.name), `${s.name} is under ${s.main}`);
  }
  const mains = await page.$$eval("[data-main]", (groups) => groups.map((g) => g.dataset.main));
  check(JSON.stringify(mains) === JSON.stringify(expected.mains), `groups ${mains}`);
  const firstInGroup = await page.$$eval("[data-main]", (groups) =>
    groups.map((g) => g.querySelector("[data-account]").dataset.account));
  check(JSON.stringify(firstInGroup) === JSON.stringify(expected.mains), `main accounts first: ${firstInGroup}`);
  check(await page.locator(".tl-axis .now-label").count() === 1, "no now-line label");
  check(await page.locator(".tl-row[data-account] .renew").count() === expected.renewable,
    "a renewal window for every live token");
  check(await page.locator(".tl-row[data-account] .expiry").count() === expected.with_expiry,
    "an expiry mark for every token with an expiry");

  const count = async (label) => text(`[data-count="${label}"] dd`);
  check(await count("Supabase") === String(expected.supabase_tokens), `Supabase count ${await count("Supabase")}`);
  check(await count("Redis") === String(expected.redis_tokens), `Redis count ${await count("Redis")}`);
  check(await count("Active") === String(expected.active_tokens), `Active count ${await count("Active")}`);
  check(await count("Expiring soon") === String(expected.expiring_soon), `Expiring soon ${await count("Expiring soon")}`);
  check(await count("Sync needed") === "no", `Sync needed ${await count("Sync needed")}`);

  const runRows = async () => page.$$eval("#runs-table tbody tr[data-run]", (rows) =>
    rows.map((r) => ({ status: r.dataset.status, cells: [...r.cells].map((c) => c.textContent.trim()) })));
  let runs = await runRows();
  check(runs.length === expected.runs_before && runs.every((r) => r.status === "succeeded"),
    `runs before the failure: ${JSON.stringify(runs)}`);
  check(runs[0].cells[1] === "sync" && /seen/.test(runs[0].cells[5]), `newest run row: ${runs[0].cells}`);
  check(await page.locator(".runs-svg .run").count() === runs.length, "one bar per run in the chart");
  check(/No failed run/.test(await text("#lasterror")), `last error before the failure: ${await text("#lasterror")}`);

  step("screenshots");
  await page.screenshot({ path: join(outDir, "dashboard.png"), fullPage: true });

  // 4. Upstash fails: the page says so, then shows the failed run and its error in words. -----
  step("Upstash fails");
  await need("break-upstash");
  await page.click("#refresh");
  // Status never calls Upstash (it shows what the last successful sync counted), so the page
  // keeps answering; the failed run makes a sync needed.
  await page.locator("#runs-table tbody tr[data-status=failed]").first().waitFor();
  check(await page.locator("#problems").isHidden(), `a problem shown: ${await text("#problems")}`);
  check(await count("Sync needed") === "yes", `Sync needed after a failed sync: ${await count("Sync needed")}`);
  const lastError = await text("#lasterror");
  check(/sync \(http\) failed/.test(lastError) && /Upstash/.test(lastError) && /NOPERM/.test(lastError),
    `last error in words: ${lastError}`);
  await page.screenshot({ path: join(outDir, "dashboard-upstash-failing.png"), fullPage: true });

  await need("restore-upstash");
  // The 30 s refresh, on the page's own timer.
  const before = apiRequests();
  const updatedBefore = await text("#updated");
  await page.clock.fastForward("00:31");
  await page.waitForFunction((old) => document.getElementById("updated").textContent !== old, updatedBefore);
  await page.locator("#problems").waitFor({ state: "hidden" });
  check(apiRequests() > before, "no request on the 30 s refresh");
  runs = await runRows();
  check(runs[0].status === "failed" && runs[0].cells[3].includes("failed") && /NOPERM/.test(runs[0].cells[6]),
    `the failed run in the table: ${JSON.stringify(runs[0])}`);
  check(await page.locator(".runs-svg .run-failed").count() === 1, "the failed run in the chart");

  // 5. Phone width: no sideways scrolling of the page, states still in words. ----------------
  step("phone width");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(100);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the page scrolls sideways by ${overflow}px at phone width`);
  check(await page.locator(".tl-state").first().isVisible(), "states not visible at phone width");
  await page.screenshot({ path: join(outDir, "dashboard-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1360, height: 900 });

  // 6. No token, no other key, anywhere. ------------------------------------------------------
  step("leak checks");
  const source = await page.content();
  const storage = await page.evaluate(() => JSON.stringify({ ...sessionStorage }));
  for (const secret of secrets) {
    check(!source.includes(secret), "a secret is in the page source");
    check(!storage.includes(secret), "a secret is in the page's storage");
  }
  check(!source.includes(readKey), "the read key is in the page source");

  // 7. Sign out: the key is gone and the page stops asking. ------------------------------------
  step("sign out");
  await page.click("#signout");
  await page.locator("#signin").waitFor({ state: "visible" });
  check(/Signed out/.test(await text("#signin-message")), "no sign-out message");
  check(await page.evaluate(() => sessionStorage.length) === 0, "the key survived sign-out");
  check(await page.locator("[data-account]").count() === 0, "account data left on the page after sign-out");
  const afterSignOut = apiRequests();
  await page.clock.fastForward("01:05");
  await page.waitForTimeout(200);
  check(apiRequests() === afterSignOut, "the page kept calling the API after sign-out");
  await page.reload();
  await page.locator("#signin").waitFor({ state: "visible" });

  const violations = await page.evaluate(() => window.__violations);
  check(violations.length === 0, `Content-Security-Policy violations: ${violations}`);
  check(problems.length === 0, problems.join("; "));

  // Every request and response of the test: no token or other secret; the read key only ever
  // in an Authorization header; never a call that returns a token.
  let requests = 0;
  for (const t of traffic) {
    requests++;
    const url = t.request.url();
    const requestHeaders = await t.headers;
    const responseBody = (await t.responseBody) ?? "";
    const responseHeaders = JSON.stringify(t.responseHeaders ?? {});
    check(url.startsWith(base), `a request left the Worker's origin: ${url}`);
    check(!/\/v1\/tokens\/[^?]/.test(new URL(url).pathname), `the page asked for a token: ${url}`);
    const { authorization, ...otherHeaders } = requestHeaders;
    const exposed = [url, JSON.stringify(otherHeaders), t.body, responseBody, responseHeaders];
    for (const secret of secrets) {
      check(!exposed.some((part) => part.includes(secret)), `a secret is in ${t.request.method()} ${url}`);
    }
    check(!exposed.some((part) => part.includes(readKey)), `the read key is outside the Authorization header of ${url}`);
    if (authorization !== undefined) {
      check(authorization === `Bearer ${readKey}` || authorization === "Bearer this-is-not-the-read-key-0000000000000000",
        `unexpected Authorization on ${url}`);
      check(new URL(url).pathname.startsWith("/v1/"), `the key was sent to ${url}`);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`RESULT ${JSON.stringify({ ok: true, requests, seconds, screenshots: outDir })}\n`);
} catch (e) {
  process.stderr.write(`dashboard test failed: ${e.stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser.close();
  stdin.close();
}
