// compose.mjs -- a blast sent from the page (/send) in headless Chromium, end to end:
// upload a messy CSV, compose with a curly apostrophe (UCS-2 shown, the character named,
// the replacement offered and taken), test-send the email version to a typed address (one
// email at the emulator, its subject marked TEST), preview, test-send (the emulator gets
// exactly one message, marked TEST), launch by alice (a sender) with launch.approvals 2, approval by bob
// from his own session, and the campaign watched to done: the page's counts equal the
// emulator's and the preview's.
//   node compose.mjs <tracker base URL> <emulator base URL> <messy.csv> <screenshot path>
import { fail, num, withChromium } from "./chromium.mjs";

const [base, sim, csv, shot] = process.argv.slice(2);
if (!shot) { console.error("usage: node compose.mjs BASE SIM CSV SCREENSHOT"); process.exit(2); }
const ALICE = process.env.TOCSIN_TOKEN_ALICE, BOB = process.env.TOCSIN_TOKEN_BOB;
const ACCOUNT = "ACit00000000000000000000000000000", TEST_TO = "+12025550999";
const simAuth = { Authorization: "Basic " + Buffer.from(ACCOUNT + ":" + process.env.TOCSIN_TWILIO_TOKEN).toString("base64") };
const simJson = async (p) => (await fetch(sim + p, { headers: simAuth })).json();
const accepted = async () => ((await simJson("/_sim/stats")).vendors.twilio || {}).accepted || 0;
const emails = async () => ((await simJson("/_sim/email")).vendors.sendgrid || {}).accepted || 0;
const text = async (page, sel) => (await page.textContent(sel)).trim();

async function signIn(ctx, token, who) {
  const page = await ctx.newPage();
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  page.foreign = foreign;
  await page.goto(base + "/send", { waitUntil: "load" });
  await page.fill("#token", token);
  await page.dispatchEvent("#token", "change");
  await page.waitForFunction((w) => document.querySelector("#who").textContent.startsWith(w), who, { timeout: 10000 });
  return page;
}

await withChromium(1400, 1300, async (ctx) => {
  const page = await signIn(ctx, ALICE, "alice");
  if (!(await text(page, "#who")).includes("sender")) fail("alice is not shown as a sender");

  // 1. upload: columns mapped, rows counted, the unreadable row reported, a sample shown
  await page.setInputFiles("#aud-file", csv);
  await page.fill("#aud-name", "Messy <b>list</b>");
  await page.click("#aud-upload");
  await page.waitForSelector("#aud-info .rows", { timeout: 20000 });
  const rows = num(await text(page, "#aud-info .rows")), bad = num(await text(page, "#aud-info .bad-rows"));
  if (rows !== 245 || bad !== 1) fail(`upload: ${rows} rows, ${bad} unreadable (want 245, 1)`);
  if (await page.$("#aud-info b b")) fail("the audience's name was rendered as HTML");
  const info = await text(page, "#aud-info");
  for (const c of ["{{First_Name}}", "{{Mobile_Phone_cell}}", "{{City}}"]) if (!info.includes(c)) fail("column " + c + " not offered: " + info);
  if ((await page.inputValue("#phone-col")) !== "Mobile_Phone_cell") fail("phone column not guessed");
  if ((await page.$$("#aud-sample tr")).length !== 6 || !(await text(page, "#aud-sample")).includes("(202) 555-1000")) fail("no sample of 5 rows shown");
  console.log(`upload: ${rows} rows, ${bad} unreadable, columns mapped`);

  // 2. compose: the curly apostrophe forces UCS-2; the page says which and offers plain
  await page.fill("#camp-id", "web-rally");
  await page.fill("#camp-name", "Web rally");
  await page.fill("#sms-text", "Hi {{First_Name|default:\"friend\"}}, we\u2019re voting tonight in {{City}}. Reply STOP to opt out");
  await page.waitForFunction(() => document.querySelector("#an-enc").textContent === "UCS-2", null, { timeout: 10000 });
  const forced = await text(page, "#an-forced");
  if (!forced.includes("\u2019") || !forced.includes("U+2019")) fail("the forcing character is not named: " + forced);
  if (await page.isHidden("#replace-btn")) fail("no replacement offered");
  console.log("compose: " + forced + "; offered: " + (await text(page, "#an-suggest-text")));
  await page.click("#replace-btn");
  await page.waitForFunction(() => document.querySelector("#an-enc").textContent === "GSM-7", null, { timeout: 10000 });
  if ((await page.inputValue("#sms-text")).includes("\u2019")) fail("the replacement did not change the text");
  if (num(await text(page, "#an-seg")) !== 1) fail("segments: " + (await text(page, "#an-seg")));
  if (await page.isVisible("#replace-btn")) fail("a replacement still offered after taking it");
  // an unknown field is named at once
  await page.fill("#sms-text", "Hi {{frist_name}} in {{Town}}");
  await page.waitForFunction(() => /frist_name, Town/.test(document.querySelector("#an-unknown").textContent), null, { timeout: 10000 });
  await page.fill("#sms-text", "Hi {{First_Name|default:\"friend\"}}, we're voting tonight in {{City}}. Reply STOP to opt out");
  await page.waitForFunction(() => document.querySelector("#an-enc").textContent === "GSM-7" && !document.querySelector("#an-unknown").textContent, null, { timeout: 10000 });

  // the email version is checked by the same code: an unknown field in its subject is named
  await page.click("#email-box summary");
  await page.fill("#em-subject", "News for {{Town}}");
  await page.waitForFunction(() => document.querySelector("#an-email").textContent === "unknown fields: Town", null, { timeout: 10000 });
  // a test of the email version to a typed address: one email at the emulator, marked TEST
  await page.fill("#em-subject", "News for {{First_Name}}");
  await page.fill("#em-text", "We vote tonight.\nUnsubscribe: {{unsubscribe_url}}");
  await page.waitForFunction(() => document.querySelector("#an-email").textContent === "", null, { timeout: 10000 });
  const e0 = await emails(), s0 = await accepted();
  await page.fill("#test-to", "Tester@Example.org");
  await page.click("#test-btn");
  await page.waitForFunction(() => (document.querySelector("#test-text")?.textContent || "").startsWith("TEST: News for Pat0"), null, { timeout: 30000 });
  if ((await text(page, "#test-outcome")) !== "accepted") fail("test email: " + (await text(page, "#test-result")));
  if ((await emails()) !== e0 + 1 || (await accepted()) !== s0) fail(`test email: the emulator got ${(await emails()) - e0} emails and ${(await accepted()) - s0} SMS (want 1, 0)`);
  console.log("test email: " + (await text(page, "#test-result")));
  await page.fill("#em-subject", "");
  await page.fill("#em-text", "");
  await page.fill("#test-to", "");
  await page.waitForFunction(() => document.querySelector("#an-email").textContent === "", null, { timeout: 10000 });

  // 3. preview
  await page.click("#preview-btn");
  await page.waitForSelector("#pv:not([hidden])", { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector("#pv-queued").textContent !== "", null, { timeout: 30000 });
  const pv = {};
  for (const k of ["queued", "rejected", "suppressed", "duplicates", "read"]) pv[k] = num(await text(page, "#pv-" + k));
  if (pv.queued !== 242 || pv.rejected !== 3 || pv.duplicates !== 1) fail("preview counts " + JSON.stringify(pv));
  if ((await page.$$("#pv-messages .pv-msg")).length !== 5) fail("not 5 rendered messages");
  const total = await text(page, "#pv-total");
  if (total !== (242 * 0.0079).toFixed(2)) fail("estimated cost " + total);
  console.log("preview: " + JSON.stringify(pv) + ", cost " + total);

  // 4. test send: exactly one message at the emulator, marked TEST, to that number
  const before = await accepted();
  await page.fill("#test-to", "(202) 555-0999");
  await page.click("#test-btn");
  await page.waitForSelector("#test-outcome", { timeout: 30000 });
  if ((await text(page, "#test-outcome")) !== "accepted") fail("test send: " + (await text(page, "#test-result")));
  const list = await simJson(`/2010-04-01/Accounts/${ACCOUNT}/Messages.json?To=${encodeURIComponent(TEST_TO)}`);
  if (list.messages.length !== 1 || !list.messages[0].body.startsWith("TEST: Hi Pat0,")) fail("emulator got " + JSON.stringify(list.messages.map((m) => m.body)));
  if ((await accepted()) !== before + 1) fail("the test send was not exactly one message");
  console.log("test send: the emulator got one message: " + list.messages[0].body);

  // 5. launch: typed count, then waits for a second person
  await page.fill("#confirm", "241");
  await page.click("#launch-btn");
  await page.waitForFunction(() => /type the number of recipients \(242\)/.test(document.querySelector("#err").textContent), null, { timeout: 20000 });
  await page.fill("#confirm", "242");
  await page.click("#launch-btn");
  const row = 'tr[data-launch="web-rally"]';
  await page.waitForFunction((r) => document.querySelector(r + " .state")?.textContent === "pending", row, { timeout: 20000 });
  await new Promise((r) => setTimeout(r, 1500));
  if ((await accepted()) !== before + 1) fail("something was sent before the approval");
  console.log("launch: pending, nothing sent");

  // bob approves from his own session
  const bobPage = await signIn(ctx, BOB, "bob");
  await bobPage.waitForSelector(`${row} button.approve`, { timeout: 10000 });
  await bobPage.click(`${row} button.approve`);
  await bobPage.waitForFunction((r) => ["running", "done"].includes(document.querySelector(r + " .state")?.textContent), row, { timeout: 20000 });
  console.log("approved by bob: launched");

  // watched to done on alice's page
  await page.waitForFunction((r) => document.querySelector(r + " .camp-state")?.textContent === "done", row, { timeout: 120000 });
  await new Promise((r) => setTimeout(r, 1500));
  const sent = num(await text(page, `${row} .sent`)), delivered = num(await text(page, `${row} .delivered`));
  const failed = num(await text(page, `${row} .failed`)), emu = (await accepted()) - before - 1;
  if (sent !== emu || delivered !== emu || emu !== pv.queued || failed !== 0)
    fail(`page: sent ${sent}, delivered ${delivered}, failed ${failed}; emulator accepted ${emu}; preview ${pv.queued}`);
  if (!(await text(page, `${row} .approved`)).includes("bob")) fail("approver not shown");
  console.log(`done: page sent ${sent} = delivered ${delivered} = emulator ${emu} = preview ${pv.queued}`);
  for (const p of [page, bobPage]) if (p.foreign.length) fail("requests outside the tracker: " + p.foreign.join(" "));
  await bobPage.close();
  // a picture for people, not a check: a machine too loaded to draw one in 2 min skips it
  await page.screenshot({ path: shot, fullPage: true, timeout: 120000 })
    .then(() => console.log("screenshot: " + shot), (e) => console.log("screenshot skipped: " + e.message.split("\n")[0]));
});
