// dashboard.mjs -- drive the tracker dashboard in headless Chromium during a running blast:
// counts shown match the API, pause (behind a confirmation) shows the campaign paused,
// no request leaves the tracker, and a screenshot is saved.
//   node dashboard.mjs <tracker base URL> <campaign id> <control token> <screenshot path>
import { fail, num, withChromium } from "./chromium.mjs";

const [base, camp, token, shot] = process.argv.slice(2);
if (!shot) { console.error("usage: node dashboard.mjs BASE CAMPAIGN TOKEN SCREENSHOT"); process.exit(2); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await withChromium(1400, 1000, async (ctx) => {
  const page = await ctx.newPage();
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  let dialogs = 0;
  page.on("dialog", async (d) => { dialogs++; if (!/^Pause campaign/.test(d.message())) fail("dialog: " + d.message()); await d.accept(); });
  await page.goto(base + "/", { waitUntil: "load" });
  const row = `tr[data-campaign="${camp}"]`;
  await page.waitForSelector(row, { timeout: 20000 });

  // live: the shown total grows while the blast runs, and the page refreshes within 2 s
  const t0 = num(await page.textContent(`${row} .sent`));
  const u0 = Number(await page.getAttribute("#updated", "data-ts"));
  await sleep(2500);
  const t1 = num(await page.textContent(`${row} .sent`));
  const u1 = Number(await page.getAttribute("#updated", "data-ts"));
  if (!(u1 > u0)) fail("page did not refresh within 2.5 s");
  console.log(`live: sent ${t0} -> ${t1}`);
  if (!(t1 > 0)) fail("dashboard shows no messages during the blast");

  // pause, behind a confirmation, with the token
  await page.fill("#token", token);
  await page.dispatchEvent("#token", "change");
  await page.click(`${row} button.pause`);
  await page.waitForFunction((sel) => document.querySelector(sel + " .state")?.textContent === "paused",
                             row, { timeout: 15000 });
  if (dialogs !== 1) fail("expected one confirmation dialog, saw " + dialogs);
  const api = await (await fetch(`${base}/api/campaigns/${camp}`)).json();
  if (api.state !== "paused") fail("API says " + api.state);
  console.log("paused: dashboard and API agree");

  // once the counts stand still, every number shown equals the API's
  let prev = "", same = 0, c;
  for (let i = 0; i < 60 && same < 2; i++) {
    c = await (await fetch(`${base}/api/campaigns/${camp}`)).json();
    const k = JSON.stringify(c.states);
    same = k === prev ? same + 1 : 0; prev = k;
    await sleep(1000);
  }
  if (same < 2) fail("counts never settled");
  await sleep(2200); // at least one dashboard refresh after the last API read
  const cols = ["audience", "sent", "delivered", "failed", "in_progress", "cancelled", "expired"];
  const shown = await page.$eval(row, (tr, cols) => Object.fromEntries(
    cols.map((k) => [k, tr.querySelector("." + k).textContent])), cols);
  const want = Object.fromEntries(cols.map((k) => [k, c.summary[k]]));
  for (const k of cols)
    if (num(shown[k]) !== want[k]) fail(`${k}: shown ${shown[k]}, API ${want[k]}`);
  console.log("counts match the API: " + JSON.stringify(want));
  if (foreign.length) fail("requests outside the tracker: " + foreign.join(" "));
  await page.screenshot({ path: shot, fullPage: true });
  console.log("screenshot: " + shot);
});
