// One real Baileys client as one person on our relay mock (tests/whatsapp_relay.rs).
// usage: node relay-harness.mjs <ws-url> <admin-base-url> <auth-dir> <account-phone>
// Links to account <account-phone> (the mock phone of that account scans the QR) unless the auth
// dir already holds creds; HARNESS_EXPECT_NO_QR=1 makes a QR a failure. Restarts on 515.
// Speaks JSON lines. stdin commands:
//   {"cmd":"send","to":"<digits or jid>","text":"..."}  -> {"event":"sent","id","to"}
//   {"cmd":"forget-sessions","users":["<digits>",...]}   -> deletes this client's Signal sessions
//                                                           with those users (PN or LID digits),
//                                                           {"event":"forgot","files":[...]}
//   {"cmd":"read","from":"<jid>","id":"<message id>"}    -> read receipt, {"event":"read","id"}
//   {"cmd":"typing","to":"<digits or jid>","state":"composing|paused"} -> {"event":"typed"}
//   {"cmd":"presence-subscribe","to":"<digits or jid>"} -> {"event":"subscribed","to"}
//   {"cmd":"quit"}                                       -> closes the socket, exit 0
// HARNESS_NICE=<0..19>: runs this process (every thread) at that niceness (benches: the contact
//   yields the CPU to the assistant being measured, as a phone elsewhere would).
// HARNESS_BOT_URL=<OpenAI-compatible base URL>: answers every text DM with the model's reply.
// HARNESS_BOT_LIKE_GATEWAY=1 (with HARNESS_BOT_URL): also does what our gateway does by default
//   around a turn: the read receipt and `composing` when the DM arrives, `paused` after the reply.
// Every event carries `at` (unix ms, sub-ms precision); `sent` also `t0` (before sendMessage).
// Sent messages are kept in memory and served through `getMessage`, so retry receipts can be
// answered with a re-encrypted copy.
// stdout events: qr, scan, close {code}, open {jid, lid, sockets}, pending-done,
//   message {id, from, fromMe, text, upsert, stub, pushName, reaction: {text, key} | null},
//   reaction {id (the reacted message), remoteJid, fromMe, text}, update {id, remoteJid, status},
//   presence {id, presences},
//   error {message}.
import { readdirSync, rmSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { makeWASocket, DisconnectReason, useMultiFileAuthState, P, getMessageFrom } from './baileys-load.mjs';

const [url, admin, authDir, account] = process.argv.slice(2);
if (!url || !admin || !authDir || !account) {
  console.error('usage: node relay-harness.mjs <ws-url> <admin-base-url> <auth-dir> <account-phone>');
  process.exit(2);
}
if (process.env.HARNESS_NICE) {
  // Niceness is per thread on Linux, and node's helper threads (V8's workers, libuv's pool) were
  // started before this line runs: renice every thread of the process; later ones inherit it.
  const nice = Number(process.env.HARNESS_NICE);
  setPriority(nice);
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // The thread ended since the listing.
    }
  }
}
const logger = P({ level: process.env.BAILEYS_LOG || 'silent' }, P.destination(2));
const started = Date.now();
// Every event carries `ms`: milliseconds since the harness started.
// `at`: unix time in ms with sub-millisecond precision (benches compare it with the Rust side).
const nowMs = () => performance.timeOrigin + performance.now();
const log = (o) => console.log(JSON.stringify({ ...o, ms: Date.now() - started, at: nowMs() }));
const { state, saveCreds } = await useMultiFileAuthState(authDir);
let sock;
let sockets = 0;
let opened = false;
let quitting = false;
const sentMessages = new Map();

setTimeout(() => {
  log({ event: 'timeout' });
  process.exit(4);
}, Number(process.env.HARNESS_TIMEOUT_MS || 180000)).unref();

const textOf = (m) => m?.conversation ?? m?.extendedTextMessage?.text ?? null;
const reactionOf = (m) => {
  const r = m?.reactionMessage;
  if (!r) return null;
  return { text: r.text ?? null, key: { id: r.key?.id ?? null, fromMe: r.key?.fromMe ?? null, remoteJid: r.key?.remoteJid ?? null } };
};

// Bot mode (HARNESS_BOT_URL, an OpenAI-compatible base URL): every text DM is answered with
// the model's reply, the minimal Baileys assistant benches compare against.
const botUrl = process.env.HARNESS_BOT_URL;
const botLikeGateway = process.env.HARNESS_BOT_LIKE_GATEWAY === '1';
async function botAnswer(m) {
  try {
    if (botLikeGateway) {
      // Not awaited, as the gateway does not hold the provider request for them.
      sock.readMessages([m.key]).catch((e) => log({ event: 'error', message: `bot read: ${e}` }));
      sock.sendPresenceUpdate('composing', m.key.remoteJid).catch((e) => log({ event: 'error', message: `bot typing: ${e}` }));
    }
    const r = await fetch(`${botUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
      body: JSON.stringify({ model: 'instant', messages: [{ role: 'user', content: textOf(m.message) }] }),
    });
    const j = await r.json();
    const text = j?.choices?.[0]?.message?.content ?? '';
    await sock.sendMessage(m.key.remoteJid, { text });
    if (botLikeGateway) await sock.sendPresenceUpdate('paused', m.key.remoteJid);
  } catch (e) {
    log({ event: 'error', message: `bot: ${e?.stack || e}` });
  }
}

function start() {
  sockets += 1;
  sock = makeWASocket({
    waWebSocketUrl: url,
    auth: state,
    logger,
    markOnlineOnConnect: false,
    syncFullHistory: false,
    getMessage: getMessageFrom(sentMessages),
    // The mock phone sends no history sync; without this Baileys holds events back for 20 s
    // after the first login from saved creds, waiting for one.
    shouldSyncHistoryMessage: () => false,
  });
  sock.ev.on('creds.update', saveCreds);
  sock.ev.on('connection.update', async (u) => {
    if (u.qr) {
      log({ event: 'qr', qr: u.qr });
      if (process.env.HARNESS_EXPECT_NO_QR) process.exit(5);
      const r = await fetch(`${admin}/admin/scan?account=${account}`, { method: 'POST', body: u.qr });
      log({ event: 'scan', status: r.status, body: await r.json() });
    }
    if (u.connection === 'open') {
      opened = true;
      log({ event: 'open', jid: sock.user?.id, lid: sock.user?.lid ?? state.creds.me?.lid, sockets });
    }
    if (u.receivedPendingNotifications) log({ event: 'pending-done' });
    if (u.connection === 'close') {
      const code = u.lastDisconnect?.error?.output?.statusCode;
      log({ event: 'close', code, message: u.lastDisconnect?.error?.message });
      if (quitting) return;
      if (code === DisconnectReason.restartRequired) start();
      else process.exit(3);
    }
  });
  sock.ev.on('messages.upsert', ({ messages, type }) => {
    for (const m of messages) {
      if (botUrl && type === 'notify' && !m.key.fromMe && textOf(m.message)) botAnswer(m);
      log({
        event: 'message',
        id: m.key.id,
        from: m.key.remoteJid,
        fromMe: !!m.key.fromMe,
        text: textOf(m.message),
        upsert: type,
        stub: m.messageStubType ?? null,
        stubParams: m.messageStubParameters ?? null,
        pushName: m.pushName ?? null,
        reaction: reactionOf(m.message),
      });
    }
  });
  sock.ev.on('messages.reaction', (reactions) => {
    for (const { key, reaction } of reactions) {
      log({ event: 'reaction', id: key?.id ?? null, remoteJid: key?.remoteJid ?? null, fromMe: !!key?.fromMe, text: reaction?.text ?? null, from: reaction?.key?.remoteJid ?? null });
    }
  });
  sock.ev.on('presence.update', ({ id, presences }) => log({ event: 'presence', id, presences }));
  sock.ev.on('messages.update', (updates) => {
    for (const { key, update } of updates) {
      if (update.status !== undefined) log({ event: 'update', id: key.id, remoteJid: key.remoteJid, status: update.status });
    }
  });
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch {
    return log({ event: 'error', message: `not JSON: ${line}` });
  }
  try {
    if (c.cmd === 'send') {
      if (!opened) throw new Error('not open');
      const jid = c.to.includes('@') ? c.to : `${c.to}@s.whatsapp.net`;
      const t0 = nowMs();
      const sent = await sock.sendMessage(jid, { text: c.text });
      if (sent?.key?.id) sentMessages.set(sent.key.id, sent.message);
      log({ event: 'sent', id: sent?.key?.id, to: jid, t0 });
    } else if (c.cmd === 'read') {
      await sock.readMessages([{ remoteJid: c.from, id: c.id, fromMe: false }]);
      log({ event: 'read', id: c.id });
    } else if (c.cmd === 'typing') {
      const jid = c.to.includes('@') ? c.to : `${c.to}@s.whatsapp.net`;
      await sock.sendPresenceUpdate(c.state, jid);
      log({ event: 'typed', state: c.state });
    } else if (c.cmd === 'presence-subscribe') {
      const jid = c.to.includes('@') ? c.to : `${c.to}@s.whatsapp.net`;
      await sock.presenceSubscribe(jid);
      log({ event: 'subscribed', to: jid });
    } else if (c.cmd === 'forget-sessions') {
      // Session files are session-<user>[_<domain>].<device>.json (useMultiFileAuthState).
      const files = readdirSync(authDir).filter((f) =>
        c.users.some((u) => f.startsWith(`session-${u}.`) || f.startsWith(`session-${u}_`)));
      for (const f of files) rmSync(join(authDir, f));
      log({ event: 'forgot', files });
    } else if (c.cmd === 'quit') {
      quitting = true;
      sock.end(undefined);
      // Let pending writes (acks, receipts) flush before exiting.
      setTimeout(() => process.exit(0), 200);
    } else {
      log({ event: 'error', message: `unknown cmd ${c.cmd}` });
    }
  } catch (e) {
    log({ event: 'error', message: String(e?.stack || e) });
  }
});
start();
