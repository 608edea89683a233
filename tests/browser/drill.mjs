// drill.mjs -- tests/it/0602-drill.sh: headless Chromium opens the `tocsin drill` report (a local
// file, nothing fetched from anywhere) and checks that its table, charts and capacity table say
// what the JSON it was built from says; saves a screenshot.
//   node drill.mjs <report.html> <report.json> <screenshot path>
import { fail, num, withChromium } from "./chromium.mjs";
import fs from "node:fs";
import path from "node:path";

const [html, jsonFile, shot] = process.argv.slice(2);
if (!shot) { console.error("usage: node drill.mjs REPORT.html REPORT.json SCREENSHOT"); process.exit(2); }
const r = JSON.parse(fs.readFileSync(jsonFile, "utf8"));
const url = "file://" + path.resolve(html);
// the report rounds whole ms to hundredths half up in integers (core/drill_report.c fmt_ms);
// (ms / 1000).toFixed(2) would not: 28435 ms is 28.434999... as a double, "28.43"
const secs = (ms) => {
  if (ms === null) return "-";
  if (ms < 0) return (ms / 1000).toFixed(2) + " s";
  const cs = Math.floor((ms + 5) / 10);
  return `${Math.floor(cs / 100)}.${String(cs % 100).padStart(2, "0")} s`;
};
await withChromium(1100, 1800, async (ctx) => {
  const page = await ctx.newPage();
  const foreign = [];
  page.on("request", (q) => { if (q.url() !== url) foreign.push(q.url()); });
  await page.goto(url, { waitUntil: "load" });
  const verdict = await page.textContent("#verdict");
  if (verdict !== (r.pass ? "every promise kept" : "promises broken")) fail("verdict: " + verdict);
  if (!r.scenarios.length) fail("the JSON has no scenario");
  // the whole drill's time ("83.4 s" or "5 min 35 s")
  const dur = await page.textContent("#duration");
  const dm = dur.match(/^(?:(\d+) min (\d\d)|(\d+\.\d)) s$/);
  const shown = dm ? (dm[3] !== undefined ? Number(dm[3]) : Number(dm[1]) * 60 + Number(dm[2])) : NaN;
  if (!(Math.abs(shown - r.duration_ms / 1000) <= (dm && dm[3] !== undefined ? 0.051 : 1)))
    fail(`duration: ${dur}, JSON ${r.duration_ms} ms`);
  for (const s of r.scenarios) {
    const row = `#scenarios tr[data-scenario="${s.name}"]`;
    const cell = async (c) => (await page.textContent(`${row} .${c}`)).trim();
    if (num(await cell("messages")) !== s.messages) fail(`${s.name}: messages ${await cell("messages")} != ${s.messages}`);
    if (num(await cell("lost")) !== s.lost) fail(`${s.name}: lost`);
    if (await cell("twice") !== `${s.twice} (${s.twice_bound})`) fail(`${s.name}: twice`);
    if (await cell("wall") !== secs(s.wall_ms)) fail(`${s.name}: wall ${await cell("wall")} != ${s.wall_ms} ms`);
    if (await cell("detect") !== secs(s.detect_ms)) fail(`${s.name}: detect ${await cell("detect")}`);
    if (await cell("switch") !== secs(s.switch_ms)) fail(`${s.name}: switch`);
    if (await cell("recover") !== secs(s.recover_ms)) fail(`${s.name}: recover`);
    if (await cell("result") !== (s.pass ? "PASS" : "FAIL")) fail(`${s.name}: result`);
    // the chart: one line per vendor, a point per bucket, heights that give back the counts
    const svg = `svg.chart[data-scenario="${s.name}"]`;
    const chart = await page.$eval(svg, (el) => {
      const bg = el.querySelector("rect");
      return {
        ymax: Number(el.dataset.ymax), top: Number(bg.getAttribute("y")), h: Number(bg.getAttribute("height")),
        fault: el.querySelectorAll("rect.fault").length,
        lines: [...el.querySelectorAll("polyline.rate")].map((p) => ({
          vendor: p.dataset.vendor,
          ys: p.getAttribute("points").trim().split(/\s+/).map((xy) => Number(xy.split(",")[1])),
        })),
      };
    });
    const perS = 1000 / s.series.bucket_ms;
    const vendors = Object.keys(s.series.vendors);
    if (chart.lines.length !== vendors.length) fail(`${s.name}: ${chart.lines.length} lines for ${vendors.length} vendors`);
    let ymax = 1;
    for (const v of vendors) for (const c of s.series.vendors[v]) ymax = Math.max(ymax, c * perS);
    if (Math.abs(chart.ymax - ymax) > 0.5) fail(`${s.name}: chart top ${chart.ymax}/s, JSON ${ymax}/s`);
    for (const line of chart.lines) {
      const counts = s.series.vendors[line.vendor];
      if (!counts) fail(`${s.name}: a line for ${line.vendor}, not in the JSON`);
      if (line.ys.length !== counts.length) fail(`${s.name} ${line.vendor}: ${line.ys.length} points, ${counts.length} buckets`);
      line.ys.forEach((y, i) => {
        const shown = (1 - (y - chart.top) / chart.h) * chart.ymax;
        if (Math.abs(shown - counts[i] * perS) > ymax * 0.002 + 0.5)
          fail(`${s.name} ${line.vendor} bucket ${i}: drawn ${shown.toFixed(1)}/s, JSON ${counts[i] * perS}/s`);
      });
    }
    if ((chart.fault === 1) !== (s.fault_ms !== null)) fail(`${s.name}: fault marked ${chart.fault}, fault_ms ${s.fault_ms}`);
    console.log(`${s.name}: row and chart = JSON (${vendors.join(", ")}; ${s.series.vendors[vendors[0]].length} buckets; fault ${s.fault_ms === null ? "none" : "marked"})`);
  }
  // the capacity table
  const ch = r.capacity.channels[0];
  const rows = await page.$$eval("#capacity tr.vendor", (trs) => trs.map((tr) => ({
    vendor: tr.dataset.vendor, sustained: tr.querySelector(".sustained").textContent })));
  if (rows.length !== ch.vendors.length) fail(`capacity: ${rows.length} rows, ${ch.vendors.length} vendors`);
  ch.vendors.forEach((v, i) => {
    const want = v.sustained === null ? "unlimited" : String(Math.round(v.sustained));
    if (rows[i].vendor !== v.name || rows[i].sustained !== want) fail(`capacity row ${i}: ${JSON.stringify(rows[i])}`);
  });
  const mps = await page.textContent("#capacity tr.route .messages_per_s");
  if (num(mps) !== Math.round(ch.messages_per_s)) fail(`capacity route ${mps} != ${ch.messages_per_s}`);
  if (foreign.length) fail("the report fetched " + foreign.join(", "));
  await page.screenshot({ path: shot, fullPage: true });
  console.log("ok: the report says what its JSON says");
});
