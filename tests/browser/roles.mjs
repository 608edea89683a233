// roles.mjs -- who may do what on the page (/send): a sender cannot approve (its own launch
// or any), an approver cannot approve a launch it asked for, a viewer cannot preview or
// launch, no token gets 401; each refusal is a 403/401 whose message the page shows, and
// changes nothing. Last, the audience is deleted from the page: a viewer's Delete is a 403
// said on the page, alice's (who uploaded it; its launches ended) removes it from the list.
// Needs an audience uploaded by alice (compose.mjs) and launch.approvals 2.
//   node roles.mjs <tracker base URL>
import { fail, withChromium } from "./chromium.mjs";

const [base] = process.argv.slice(2);
if (!base) { console.error("usage: node roles.mjs BASE"); process.exit(2); }
const T = { alice: process.env.TOCSIN_TOKEN_ALICE, bob: process.env.TOCSIN_TOKEN_BOB,
            carol: process.env.TOCSIN_TOKEN_CAROL, dan: process.env.TOCSIN_TOKEN_DAN };
async function call(who, path, body) {
  const o = { headers: who ? { Authorization: "Bearer " + T[who] } : {} };
  if (body !== undefined) { o.method = "POST"; o.headers["Content-Type"] = "application/json"; o.body = JSON.stringify(body); }
  const r = await fetch(base + path, o);
  return { status: r.status, body: await r.json().catch(() => ({})) };
}
const expect = (r, status, re, what) => {
  if (r.status !== status || !re.test(r.body.error || "")) fail(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  console.log(`${what}: ${status} "${r.body.error}"`);
};
const aud = (await call("carol", "/api/audiences")).body.audiences[0];
if (!aud) fail("no audience uploaded");
const draft = (id) => ({ id, name: id, audience: aud.id, phone_column: "Mobile_Phone_cell",
                         sms: { template: "Hi {{First_Name|default:\"friend\"}}" } });

expect(await call(null, "/api/launches"), 401, /missing or wrong token/, "no token");
expect(await call("carol", "/api/launches", Object.assign(draft("roles-carol"), { confirm: "roles-carol" })), 403,
       /needs the sender role; carol is a viewer/, "viewer launches");
let r = await call("alice", "/api/launches", Object.assign(draft("roles-alice"), { confirm: "roles-alice" }));
if (r.status !== 201 || r.body.state !== "pending") fail("alice's launch request: " + JSON.stringify(r));
expect(await call("alice", "/api/launches", Object.assign(draft("roles-alice"), { confirm: "roles-alice" })), 409,
       /campaign "roles-alice" already has a launch pending/, "the same launch asked for twice");
r = await call("bob", "/api/launches", Object.assign(draft("roles-bob"), { confirm: "roles-bob" }));
if (r.status !== 201 || r.body.state !== "pending") fail("bob's launch request: " + JSON.stringify(r));
expect(await call("bob", "/api/launches/roles-bob/approve", {}), 403, /bob asked for this launch: a second, different person/,
       "approver approves its own launch");
expect(await call("carol", "/api/launches/roles-bob/cancel", {}), 403, /needs the sender role/, "viewer cancels");
expect(await call("alice", "/api/launches/roles-bob/cancel", {}), 403, /only bob \(who asked for it\) or an approver/,
       "another sender cancels");

await withChromium(1400, 1000, async (ctx) => {
  // alice, a sender, presses approve on her own pending launch: 403, said on the page
  const page = await ctx.newPage();
  await page.goto(base + "/send", { waitUntil: "load" });
  await page.fill("#token", T.alice);
  await page.dispatchEvent("#token", "change");
  const row = 'tr[data-launch="roles-alice"]';
  await page.waitForSelector(`${row} button.approve`, { timeout: 10000 });
  await page.click(`${row} button.approve`);
  const shown = async (re) => (await page.waitForFunction((re) => { const t = document.querySelector("#err").textContent;
    return new RegExp(re).test(t) && t; }, re, { timeout: 10000 })).jsonValue();
  console.log("page (alice approves): " + (await shown("approving a launch needs the approver role; alice is a sender")));
  // carol, a viewer, cannot even preview
  await page.fill("#token", T.carol);
  await page.dispatchEvent("#token", "change");
  await page.waitForFunction(() => document.querySelector("#who").textContent.startsWith("carol"), null, { timeout: 10000 });
  await page.selectOption("#aud-select", aud.id);
  await page.waitForSelector("#aud-info .rows", { timeout: 10000 });
  await page.click("#preview-btn");
  console.log("page (carol previews): " + (await shown("needs the sender role; carol is a viewer")));
});

// nothing changed by the refusals: both still pending, unapproved; then cancelled by who may
const ls = (await call("carol", "/api/launches")).body.launches;
for (const id of ["roles-alice", "roles-bob"]) {
  const l = ls.find((x) => x.id === id);
  if (!l || l.state !== "pending" || l.approved_by.length) fail(id + " changed: " + JSON.stringify(l));
}
if (ls.find((x) => x.id === "roles-carol")) fail("the viewer's launch was recorded");
if ((await call("alice", "/api/launches/roles-alice/cancel", {})).status !== 200) fail("requester cannot cancel");
r = await call("dan", "/api/launches/roles-bob/cancel", {});
if (r.status !== 200 || r.body.state !== "cancelled" || r.body.cancelled_by !== "dan") fail("approver cannot cancel: " + JSON.stringify(r));
expect(await call("dan", "/api/launches/roles-bob/approve", {}), 409, /cancelled, not waiting/, "approve after cancel");
const camps = await (await fetch(base + "/api/campaigns")).json();
if (camps.campaigns.some((c) => c.id.startsWith("roles-"))) fail("a refused or cancelled launch reached Kafka");
console.log("roles: every refusal changed nothing");

await withChromium(1400, 1000, async (ctx) => {
  const page = await ctx.newPage();
  await page.goto(base + "/send", { waitUntil: "load" });
  page.on("dialog", (d) => d.accept()); /* "Delete the audience …?" */
  const as = async (who) => {
    await page.fill("#token", T[who]);
    await page.dispatchEvent("#token", "change");
    await page.waitForFunction((w) => document.querySelector("#who").textContent.startsWith(w), who, { timeout: 10000 });
    await page.selectOption("#aud-select", aud.id);
    await page.waitForSelector("#aud-info .rows", { timeout: 10000 });
  };
  await as("carol");
  await page.click("#aud-delete");
  await page.waitForFunction(() => /needs the sender role; carol is a viewer/.test(document.querySelector("#err").textContent), null, { timeout: 10000 });
  if ((await call("carol", "/api/audiences/" + aud.id)).status !== 200) fail("the viewer's delete removed the audience");
  console.log("page (carol deletes): " + (await page.textContent("#err")));
  await as("alice");
  await page.click("#aud-delete");
  await page.waitForFunction(() => document.querySelector("#aud-pct").textContent === "deleted", null, { timeout: 10000 });
  if (await page.$(`#aud-select option[value="${aud.id}"]`)) fail("the deleted audience is still listed");
  if (!(await page.isDisabled("#aud-delete"))) fail("delete still offered with no audience");
  if ((await call("carol", "/api/audiences/" + aud.id)).status !== 404) fail("the audience is still there");
  console.log("page (alice deletes): audience " + aud.id + " deleted");
});
