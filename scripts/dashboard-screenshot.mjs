#!/usr/bin/env node
// Signs in to the status page with a read key and saves a full-page screenshot, in Debian's
// headless Chromium (playwright-core). Used for docs/dashboard.png:
//
//   node scripts/dashboard-screenshot.mjs URL OUT.png [WIDTH]    (the read key in $READ_KEY)
//
// e.g. against the test stack with the demo tokens:
//   eval "$(scripts/env.sh test)"; scripts/seed-demo-tokens.sh <its redis port>; (sync it)
//   READ_KEY=$TM_TEST_READ_KEY node scripts/dashboard-screenshot.mjs $TM_TEST_WORKER_URL docs/dashboard.png
import { chromium } from "playwright-core";

const [url, out, width = "1360"] = process.argv.slice(2);
const key = process.env.READ_KEY;
if (!url || !out || !key) {
  console.error("usage: READ_KEY=… node scripts/dashboard-screenshot.mjs URL OUT.png [WIDTH]");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
});
try {
  const page = await browser.newPage({ viewport: { width: Number(width), height: 900 } });
  await page.goto(`${url}/dashboard`);
  await page.fill("#key", key);
  await page.click("#signin-button");
  await page.locator("[data-account]").first().waitFor();
  await page.screenshot({ path: out, fullPage: true });
  console.error(`==> ${out}`);
} finally {
  await browser.close();
}
