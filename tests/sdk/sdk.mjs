// sdk.mjs -- the vendors' official Node SDKs against tocsin vendor-sim, pointed at it by base URL:
// a send, an auth failure, an invalid number, throttling for each; Twilio list and fetch; the
// emulator's webhooks checked by the SDKs' own signature verifiers.
// Usage: node sdk.mjs http://127.0.0.1:PORT   (credentials from the environment, see 0403-vendor-sdks.sh)
import http from 'node:http';
import twilio from 'twilio';
import { SMS } from '@vonage/sms';
import { AlgorithmTypes } from '@vonage/auth';
import sgMail from '@sendgrid/mail';
import sgClientPkg from '@sendgrid/client';
import eventwebhook from '@sendgrid/eventwebhook';
import Mailgun from 'mailgun.js';
import FormData from 'form-data';

const BASE = process.argv[2];
const env = (k) => {
  if (!process.env[k]) throw new Error(`missing env ${k}`);
  return process.env[k];
};
const TW_ACCOUNT = env('SDK_TW_ACCOUNT'), TW_TOKEN = env('TOCSIN_TWILIO_TOKEN');
const VG_KEY = env('SDK_VG_KEY'), VG_SECRET = env('TOCSIN_VG_SECRET'), VG_SIG = env('TOCSIN_VG_SIG');
const VG2_KEY = env('SDK_VG2_KEY'), VG2_SIG = env('TOCSIN_VG_SIG2');
const SG_KEY = env('TOCSIN_SG_KEY'), MG_KEY = env('TOCSIN_MG_KEY'), MG_DOMAIN = env('SDK_MG_DOMAIN');

let checks = 0;
function ok(cond, what, detail) {
  if (!cond) throw new Error(`${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
  checks++;
}
async function fails(promise, what) {
  try {
    const r = await promise;
    throw new Error(`${what}: expected a failure, got ${JSON.stringify(r).slice(0, 300)}`);
  } catch (e) {
    if (e.message.startsWith(`${what}: expected a failure`)) throw e;
    return e;
  }
}
async function ctl(path, body) {
  const r = await fetch(BASE + path, body ? { method: 'POST', body: JSON.stringify(body) } : {});
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}
const accepted = async (name) => (await ctl('/_sim/stats')).vendors[name].accepted;
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

// ---- a webhook receiver: what the emulator posts, by path ----
const got = {};
const rx = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    (got[req.url] ??= []).push({ headers: req.headers, body });
    res.end('ok');
  });
});
await new Promise((res) => rx.listen(0, '127.0.0.1', res));
const RX = `http://127.0.0.1:${rx.address().port}`;
async function webhook(path, inbound) {
  await ctl('/_sim/inbound', { ...inbound, url: RX + path });
  for (let i = 0; i < 100 && !got[path]; i++) await sleep(50);
  ok(got[path], `webhook ${path} arrived`);
  return got[path][0];
}

// ---- Twilio ----
async function twilioChecks() {
  const client = twilio(TW_ACCOUNT, TW_TOKEN);
  client.api.baseUrl = BASE;
  const to = '+15551234567';
  const a0 = await accepted('twilio');
  const m = await client.messages.create({ to, from: '+15005550006', body: '£'.repeat(100) });
  ok(m.sid.startsWith('SM') && m.status === 'queued' && m.numSegments === '1', 'twilio send', m.toJSON());
  const m2 = await client.messages.create({ to, from: '+15005550006', body: '{'.repeat(100) });
  ok(m2.numSegments === '2', 'twilio num_segments of 100 extension characters', m2.numSegments);
  const m3 = await client.messages.create({ to, from: '+15005550006', body: '😀'.repeat(36) });
  ok(m3.numSegments === '2', 'twilio num_segments of 36 emoji (72 UTF-16 units)', m3.numSegments);
  ok((await accepted('twilio')) === a0 + 3, 'twilio accepted count');

  const bad = twilio(TW_ACCOUNT, 'wrong-token');
  bad.api.baseUrl = BASE;
  let e = await fails(bad.messages.create({ to, from: '+15005550006', body: 'x' }), 'twilio auth');
  ok(e.status === 401 && e.code === 20003, 'twilio auth failure is 401/20003', { status: e.status, code: e.code });
  e = await fails(client.messages.create({ to: '+15005550001', from: '+15005550006', body: 'x' }), 'twilio invalid');
  ok(e.status === 400 && e.code === 21211, 'twilio invalid number is 400/21211', { status: e.status, code: e.code });
  await ctl('/_sim/config', { vendor: 'twilio', throttle_rate: 1, retry_after_s: 1 });
  e = await fails(client.messages.create({ to, from: '+15005550006', body: 'x' }), 'twilio throttle');
  ok(e.status === 429 && e.code === 20429, 'twilio throttled is 429/20429', { status: e.status, code: e.code });
  await ctl('/_sim/config', { vendor: 'twilio', throttle_rate: 0 });
  ok((await accepted('twilio')) === a0 + 3, 'twilio refusals accepted nothing');

  // list: the SDK pages through next_page_uri (2 per page), newest first, filtered by To
  await sleep(150); // receipts delay 100 ms: sent and delivered by now
  const list = await client.messages.list({ to, pageSize: 2 });
  ok(list.length === 3, 'twilio list by To over two pages', list.length);
  ok(list[0].sid === m3.sid && list[2].sid === m.sid, 'twilio list newest first', list.map((x) => x.sid));
  ok(list.every((x) => x.status === 'delivered' && x.dateSent instanceof Date), 'twilio list status and date_sent',
     list.map((x) => [x.status, x.dateSent]));
  const after = await client.messages.list({ to, dateSentAfter: new Date(Date.now() - 60000) });
  ok(after.length === 3, 'twilio list DateSent> a minute ago', after.length);
  const before = await client.messages.list({ to, dateSentBefore: new Date(Date.now() - 86400000) });
  ok(before.length === 0, 'twilio list DateSent< yesterday', before.length);
  const page = await client.messages.page({ to, pageSize: 2 });
  ok(page.instances.length === 2 && page.nextPageUrl && page.nextPageUrl.startsWith(BASE), 'twilio page and next page URL',
     page.nextPageUrl);
  // fetch: the message as it is now; an unknown sid is Twilio's 404
  const f = await client.messages(m.sid).fetch();
  ok(f.sid === m.sid && f.status === 'delivered' && f.body === m.body && f.errorCode === null, 'twilio fetch', f.toJSON());
  e = await fails(client.messages('SM' + '0'.repeat(32)).fetch(), 'twilio fetch unknown');
  ok(e.status === 404 && e.code === 20404, 'twilio fetch unknown is 404/20404', { status: e.status, code: e.code });

  // its webhooks pass twilio.validateRequest and carry an idempotency token
  const w = await webhook('/tw/inbound', { vendor: 'twilio', from: '+15557770001', body: 'HELP' });
  const params = Object.fromEntries(new URLSearchParams(w.body));
  ok(twilio.validateRequest(TW_TOKEN, w.headers['x-twilio-signature'], RX + '/tw/inbound', params),
     'twilio webhook signature (twilio.validateRequest)', w);
  ok(!twilio.validateRequest(TW_TOKEN, w.headers['x-twilio-signature'], RX + '/tw/inbound', { ...params, Body: 'STOP' }),
     'twilio.validateRequest refuses a changed body');
  ok(/^[0-9a-f]{16,}$/.test(w.headers['i-twilio-idempotency-token'] ?? ''), 'twilio I-Twilio-Idempotency-Token', w.headers);
}

// ---- Vonage ----
async function vonageChecks() {
  const sms = new SMS({ apiKey: VG_KEY, apiSecret: VG_SECRET }, { restHost: BASE });
  const a0 = await accepted('vonage');
  const r = await sms.send({ to: '15551234567', from: '15005550007', text: 'hi from the SDK', clientRef: 'sdk-1' });
  ok(r.messageCount === '1' && r.messages[0].status === '0' && r.messages[0].clientRef === 'sdk-1', 'vonage send', r);
  ok((await accepted('vonage')) === a0 + 1, 'vonage accepted count');
  const status = async (client, params, what) => {
    const e = await fails(client.send(params), what);
    return e.response?.messages?.[0]?.status;
  };
  const bad = new SMS({ apiKey: VG_KEY, apiSecret: 'wrong' }, { restHost: BASE });
  let st = await status(bad, { to: '15551234567', from: '15005550007', text: 'x' }, 'vonage auth');
  ok(st === '4', 'vonage bad credentials is status 4', st);
  st = await status(sms, { to: '15005550001', from: '15005550007', text: 'x' }, 'vonage invalid');
  ok(st === '3', 'vonage invalid number is status 3', st);
  await ctl('/_sim/config', { vendor: 'vonage', throttle_rate: 1 });
  st = await status(sms, { to: '15551234567', from: '15005550007', text: 'x' }, 'vonage throttle');
  ok(st === '1', 'vonage throttled is status 1', st);
  await ctl('/_sim/config', { vendor: 'vonage', throttle_rate: 0 });
  ok((await accepted('vonage')) === a0 + 1, 'vonage refusals accepted nothing');

  // signed webhooks, checked by the SDK's verifySignature: md5hash, then sha256 HMAC
  for (const [vendor, secret, alg] of [['vonage', VG_SIG, AlgorithmTypes.md5hash],
                                       ['vonage-hmac', VG2_SIG, AlgorithmTypes.sha256hmac]]) {
    const w = await webhook(`/${vendor}/inbound`, { vendor, from: '+15557770002', body: 'a&b=c STOP' });
    const params = Object.fromEntries(new URLSearchParams(w.body));
    ok(params.sig && Math.abs(Number(params.timestamp) - Date.now() / 1000) < 10, `${vendor} sig and timestamp`, params);
    ok(params.text === 'a&b=c STOP', `${vendor} text`, params.text);
    ok(sms.verifySignature(params.sig, params, secret, alg), `${vendor} signature (verifySignature ${alg})`, params);
    ok(!sms.verifySignature(params.sig, { ...params, text: 'START' }, secret, alg), `${vendor}: a changed text fails`);
  }
}

// ---- SendGrid ----
async function sendgridChecks() {
  const client = new sgClientPkg.Client();
  client.setApiKey(SG_KEY);
  client.setDefaultRequest('baseUrl', BASE);
  sgMail.setClient(client);
  const a0 = await accepted('sendgrid');
  const msg = { to: 'sdk1@example.org', from: 'news@example.org', subject: 'Rally', text: 'Rally at 7',
                customArgs: { tocsin_id: 'sdk-sg-1' } };
  const [res] = await sgMail.send(msg);
  ok(res.statusCode === 202 && res.headers['x-message-id'], 'sendgrid send', res.statusCode);
  const [res2] = await sgMail.send({ ...msg, to: 'sdk2@example.org', cc: 'sdk3@example.org', bcc: 'sdk4@example.org' });
  ok(res2.statusCode === 202, 'sendgrid send with cc and bcc', res2.statusCode);
  ok((await accepted('sendgrid')) === a0 + 2, 'sendgrid accepted count');
  let e = await fails(sgMail.send({ ...msg, cc: 'sdk1@example.org' }), 'sendgrid duplicate cc');
  const err = e.response?.body?.errors?.[0];
  ok(e.code === 400 && err?.field === 'personalizations.0.cc.0.email' && err.message.includes('[sdk1@example.org]'),
     'sendgrid duplicate between to and cc', e.response?.body);
  e = await fails(sgMail.send({ ...msg, to: 'not an address' }), 'sendgrid invalid address');
  ok(e.code === 400 && e.response?.body?.errors?.[0]?.field === 'personalizations.0.to.0.email', 'sendgrid invalid address',
     e.response?.body);
  const badClient = new sgClientPkg.Client();
  badClient.setApiKey('SG.wrong');
  badClient.setDefaultRequest('baseUrl', BASE);
  e = await fails(badClient.request({ method: 'POST', url: '/v3/mail/send', body: { personalizations: [{ to: [{ email: 'a@b.org' }] }] } }),
                  'sendgrid auth');
  ok(e.code === 401, 'sendgrid bad key is 401', e.code);
  await ctl('/_sim/config', { vendor: 'sendgrid', throttle_rate: 1 });
  e = await fails(sgMail.send(msg), 'sendgrid throttle');
  ok(e.code === 429, 'sendgrid throttled is 429', e.code);
  await ctl('/_sim/config', { vendor: 'sendgrid', throttle_rate: 0 });
  e = await fails(client.request({ method: 'GET', url: '/v3/nothing/here' }), 'sendgrid unknown path');
  ok(e.code === 404 && Array.isArray(e.response?.body?.errors), 'sendgrid unknown path in its shape', e.response?.body);
  ok((await accepted('sendgrid')) === a0 + 2, 'sendgrid refusals accepted nothing');

  // its event webhook passes @sendgrid/eventwebhook's verifySignature with the key from /_sim/keys
  const key = (await ctl('/_sim/keys')).sendgrid.sendgrid;
  const w = await webhook('/sg/events', { vendor: 'sendgrid', from: 'sdk9@example.org' });
  const ew = new eventwebhook.EventWebhook();
  const pub = ew.convertPublicKeyToECDSA(key);
  const sig = w.headers['x-twilio-email-event-webhook-signature'], ts = w.headers['x-twilio-email-event-webhook-timestamp'];
  ok(Math.abs(Number(ts) - Date.now() / 1000) < 10, 'sendgrid webhook timestamp is current', ts);
  ok(ew.verifySignature(pub, w.body, sig, ts), 'sendgrid webhook signature (EventWebhook.verifySignature)', w);
  ok(!ew.verifySignature(pub, w.body.replace('unsubscribe', 'delivered'), sig, ts), 'sendgrid: a changed body fails');
}

// ---- Mailgun ----
async function mailgunChecks() {
  const mailgun = new Mailgun(FormData);
  const mg = mailgun.client({ username: 'api', key: MG_KEY, url: BASE });
  const a0 = await accepted('mailgun');
  const r = await mg.messages.create(MG_DOMAIN, { from: 'news@mg.example.org', to: ['a@example.org, "Doe, Ann" <ann@example.org>'],
                                                 subject: 'Rally', text: 'Rally at 7' });
  ok(r.status === 200 && /^<.+@mg\.example\.org>$/.test(r.id) && r.message === 'Queued. Thank you.', 'mailgun send', r);
  ok((await accepted('mailgun')) === a0 + 2, 'mailgun: one to value with two addresses is two recipients');
  const bad = mailgun.client({ username: 'api', key: 'wrong', url: BASE });
  let e = await fails(bad.messages.create(MG_DOMAIN, { from: 'news@mg.example.org', to: ['a@example.org'], subject: 's', text: 't' }),
                      'mailgun auth');
  ok(e.status === 401, 'mailgun bad key is 401', e.status);
  e = await fails(bad.messages.create('other.example.org', { from: 'news@mg.example.org', to: ['a@example.org'], subject: 's', text: 't' }),
                  'mailgun auth, unknown domain');
  ok(e.status === 401, 'mailgun checks the key before the domain (401)', e.status);
  e = await fails(mg.messages.create('other.example.org', { from: 'news@mg.example.org', to: ['a@example.org'], subject: 's', text: 't' }),
                  'mailgun unknown domain');
  ok(e.status === 404, 'mailgun unknown domain with a good key is 404', e.status);
  e = await fails(mg.messages.create(MG_DOMAIN, { from: 'news@mg.example.org', to: ['not-an-address'], subject: 's', text: 't' }),
                  'mailgun invalid address');
  ok(e.status === 400, 'mailgun invalid address is 400', e.status);
  await ctl('/_sim/config', { vendor: 'mailgun', throttle_rate: 1 });
  e = await fails(mg.messages.create(MG_DOMAIN, { from: 'news@mg.example.org', to: ['a@example.org'], subject: 's', text: 't' }),
                  'mailgun throttle');
  ok(e.status === 429, 'mailgun throttled is 429', e.status);
  await ctl('/_sim/config', { vendor: 'mailgun', throttle_rate: 0 });
  ok((await accepted('mailgun')) === a0 + 2, 'mailgun refusals accepted nothing');
}

try {
  await ctl('/_sim/config', { receipts: { enabled: false, delay_ms: 100, delivered_rate: 1 } });
  for (const [name, fn] of [['twilio', twilioChecks], ['vonage', vonageChecks], ['sendgrid', sendgridChecks],
                            ['mailgun', mailgunChecks]]) {
    const before = checks;
    await fn();
    console.log(`ok: ${name} (${checks - before} checks)`);
  }
  console.log(`ok: ${checks} checks`);
  rx.close();
  process.exit(0);
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  if (e.stack) console.error(e.stack.split('\n').slice(1, 4).join('\n'));
  process.exit(1);
}
