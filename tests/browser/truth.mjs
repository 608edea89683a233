// truth.mjs -- after tests/it/0320-dashboard-truth.sh's outage, cancel and resend: every number
// the dashboard shows equals the API's, the messages the vendors took equal the emulator's
// count, the vendor's error chart shows the outage, the cancelled count is shown, "blast" is
// done with its failure reasons linked, test sends are apart; a screenshot is saved.
//   node truth.mjs <tracker base URL> <emulator stats JSON file> <screenshot path>
import { fail, num, withChromium } from "./chromium.mjs";
import fs from "node:fs";

const [base, simFile, shot] = process.argv.slice(2);
if (!shot) { console.error("usage: node truth.mjs BASE SIM-STATS.json SCREENSHOT"); process.exit(2); }
const sim = JSON.parse(fs.readFileSync(simFile, "utf8")).vendors.twilio;
const api = async (u) => (await fetch(base + u)).json();
await withChromium(1400, 1100, async (ctx) => {
  const page = await ctx.newPage();
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  await page.goto(base + "/", { waitUntil: "load" });
  const row = (id) => `tr[data-campaign="${id}"]:not(.reasons):not(.chan)`;
  await page.waitForFunction((sel) => document.querySelector(sel + " .state")?.textContent === "done",
                             row("blast"), { timeout: 20000 });
  await page.waitForSelector(`tr.reasons[data-campaign="blast"]`, { timeout: 10000 });
  await page.waitForTimeout(2200); // a refresh after the counts settled

  // every column of both campaigns equals the API's summary
  const cols = ["audience", "sent", "delivered", "failed", "in_progress", "cancelled", "expired"];
  const list = (await api("/api/campaigns")).campaigns;
  let sentShown = 0;
  for (const id of ["blast", "cancelme"]) {
    const c = list.find((x) => x.id === id);
    if (!c) fail("API lists no campaign " + id);
    const shown = await page.$eval(row(id), (tr, cols) => Object.fromEntries(
      cols.map((k) => [k, tr.querySelector("." + k).textContent])), cols);
    for (const k of cols)
      if (num(shown[k]) !== c.summary[k]) fail(`${id} ${k}: shown ${shown[k]}, API ${c.summary[k]}`);
    const st = await page.textContent(`${row(id)} .state`);
    if (st !== c.state) fail(`${id} state: shown ${st}, API ${c.state}`);
    sentShown += num(shown.sent);
    console.log(`${id}: page = API: ${JSON.stringify(shown)} state ${st}`);
  }
  // what the vendor took, as the emulator counted it
  if (sentShown !== sim.accepted || sentShown !== sim.unique_ids)
    fail(`sent on the page ${sentShown}, emulator accepted ${sim.accepted} (${sim.unique_ids} distinct)`);
  console.log(`sent on the page ${sentShown} = emulator accepted ${sim.accepted}`);

  // blast: done, every resent recipient delivered, the 3 permanent failures explained and linked
  const b = await api("/api/campaigns/blast");
  if (b.state !== "done" || b.summary.delivered !== 1500 || b.summary.failed !== 3)
    fail("blast: " + JSON.stringify([b.state, b.summary]));
  if (await page.$(`${row("blast")} button`)) fail("a done campaign still has controls");
  const reasons = await page.$$eval(`tr.reasons[data-campaign="blast"] .reason`, (els) =>
    els.map((e) => ({ text: e.querySelector("b").textContent, n: e.querySelector(".n").textContent,
                      list: e.querySelector("a.list").getAttribute("href"),
                      csv: e.querySelector("a.csv").getAttribute("href") })));
  const want = ["invalid number", "not a mobile number", "landline number"];
  for (const w of want) {
    const r = reasons.find((x) => x.text === w);
    if (!r || num(r.n) !== 1) fail(`reason "${w}" not shown with 1: ${JSON.stringify(reasons)}`);
    const items = (await api(r.list)).items;
    if (items.length !== 1 || items[0].state !== "failed") fail(`${w}: list link gives ${JSON.stringify(items)}`);
    const csv = (await (await fetch(base + r.csv)).text()).trim().split("\r\n");
    if (csv.length !== 2 || !csv[1].includes(items[0].id)) fail(`${w}: CSV link gives ${csv}`);
  }
  if (reasons.some((x) => /outage/.test(x.text))) fail("outage failures still shown after a successful resend");
  console.log("blast: done, 1500 delivered, reasons " + reasons.map((r) => `${r.text} — ${r.n}`).join(", "));

  // cancelme: cancelled, the count shown
  const k = await api("/api/campaigns/cancelme");
  const cancelledShown = num(await page.textContent(`${row("cancelme")} .cancelled`));
  if (k.state !== "cancelled" || cancelledShown !== k.summary.cancelled || cancelledShown < 1000)
    fail(`cancelme: state ${k.state}, cancelled shown ${cancelledShown}, API ${k.summary.cancelled}`);
  console.log(`cancelme: cancelled ${cancelledShown} shown`);

  // the vendor's error chart shows the outage (the failover's own measure)
  const se = await api("/api/series?seconds=120");
  const peak = Math.max(...se.vendors.twilio.error_rate);
  const drawn = Number(await page.getAttribute(`div.vend[data-vendor="twilio"] canvas[id^="err"]`, "data-max"));
  if (!(peak > 0.2) || Math.abs(drawn - peak) > 0.05) fail(`error chart peak ${drawn}, API ${peak}`);
  console.log(`error chart peak ${(100 * drawn).toFixed(0)}%`);

  // test sends are apart: a line, never a campaign row with controls
  const un = (await api("/api/campaigns")).unattributed;
  const unText = await page.textContent("#unattributed");
  if (un.total < 1 || !unText.includes("Test sends") || await page.$(`tr[data-campaign=""]`) ||
      await page.$(`tr[data-campaign="vendor-send"]`))
    fail(`test sends: API ${JSON.stringify(un)}, page "${unText}"`);

  // who cancelled it is on the timeline
  const tl = await page.textContent("#timeline");
  if (!/cancelme\s*campaign cancelled by it-operator/.test(tl)) fail("timeline: " + tl.slice(0, 300));
  if (foreign.length) fail("requests outside the tracker: " + foreign.join(" "));
  await page.screenshot({ path: shot, fullPage: true });
  console.log("screenshot: " + shot);
});
