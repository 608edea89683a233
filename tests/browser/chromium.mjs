// chromium.mjs -- what the browser tests share: headless Debian Chromium in a throw-away
// profile, a failing check that stops the test, and numbers as the dashboard prints them.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const fail = (m) => { console.error("FAIL: " + m); process.exitCode = 1; throw new Error(m); };
export const num = (t) => Number(String(t).replace(/,/g, ""));

// Run fn(ctx) in a fresh headless Chromium with a viewport of width x height; the browser
// and its profile are gone afterwards, whatever fn did.
export async function withChromium(width, height, fn) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tocsin-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width, height },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    await fn(ctx);
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}
