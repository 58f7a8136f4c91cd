// One real Baileys client as one group member on our relay mock (tests/whatsapp_relay_groups.rs).
// usage: node group-harness.mjs <ws-url> <admin-base-url> <auth-dir> <account-phone>
// Links to account <account-phone> (its mock phone scans the QR); restarts on 515.
// JSON lines. stdin commands:
//   {"cmd":"send","to":"<jid>","text":"..."}                    -> {"event":"sent","id","to"}
//   {"cmd":"group-create","subject":"...","participants":[jid]}  -> {"event":"group","meta"}
//   {"cmd":"group-metadata","jid":"..."}                         -> {"event":"group","meta"}
//   {"cmd":"group-participants","jid","action","participants"}  -> {"event":"participants","result"}
//   {"cmd":"group-subject","jid","subject"}                      -> {"event":"subject-set"}
//   {"cmd":"groups"}                                             -> {"event":"groups","groups":[meta]}
//   {"cmd":"sender-key","group":"<jid>"}                         -> {"event":"sender-key","keys"}
//                                       (every sender-key record this client holds for the group:
//                                        file name and the key ids in it, so a test can tell a
//                                        rotation)
//   {"cmd":"quit"}                                               -> closes the socket, exit 0
// stdout events: qr, scan, open {jid, lid}, close {code}, message {id, from, participant,
//   fromMe, text, stub, stubParams}, update {id, remoteJid, status}, participants-update {id,
//   action, participants}, groups-upsert {ids}, error {message}.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { makeWASocket, DisconnectReason, useMultiFileAuthState, BufferJSON, P, getMessageFrom } from './baileys-load.mjs';

const [url, admin, authDir, account] = process.argv.slice(2);
if (!url || !admin || !authDir || !account) {
  console.error('usage: node group-harness.mjs <ws-url> <admin-base-url> <auth-dir> <account-phone>');
  process.exit(2);
}
const logger = P({ level: process.env.BAILEYS_LOG || 'silent' }, P.destination(2));
const started = Date.now();
const log = (o) => console.log(JSON.stringify({ ...o, ms: Date.now() - started }));
const { state, saveCreds } = await useMultiFileAuthState(authDir);
let sock;
let opened = false;
let quitting = false;
const sentMessages = new Map();

setTimeout(() => {
  log({ event: 'timeout' });
  process.exit(4);
}, Number(process.env.HARNESS_TIMEOUT_MS || 240000)).unref();

const textOf = (m) => m?.conversation ?? m?.extendedTextMessage?.text ?? null;
const brief = (meta) => ({
  id: meta.id,
  subject: meta.subject,
  owner: meta.owner ?? null,
  addressingMode: meta.addressingMode,
  participants: meta.participants.map((p) => ({ id: p.id, phoneNumber: p.phoneNumber ?? null, lid: p.lid ?? null, admin: p.admin })),
});

function start() {
  sock = makeWASocket({
    waWebSocketUrl: url,
    auth: state,
    logger,
    markOnlineOnConnect: false,
    syncFullHistory: false,
    getMessage: getMessageFrom(sentMessages),
    shouldSyncHistoryMessage: () => false,
  });
  sock.ev.on('creds.update', saveCreds);
  sock.ev.on('connection.update', async (u) => {
    if (u.qr) {
      log({ event: 'qr' });
      const r = await fetch(`${admin}/admin/scan?account=${account}`, { method: 'POST', body: u.qr });
      log({ event: 'scan', status: r.status });
    }
    if (u.connection === 'open') {
      opened = true;
      log({ event: 'open', jid: sock.user?.id, lid: sock.user?.lid ?? state.creds.me?.lid });
    }
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
      log({
        event: 'message',
        id: m.key.id,
        from: m.key.remoteJid,
        participant: m.key.participant ?? null,
        fromMe: !!m.key.fromMe,
        text: textOf(m.message),
        // A reaction: its emoji and the key of the message it reacts to.
        reaction: m.message?.reactionMessage
          ? { text: m.message.reactionMessage.text ?? null, id: m.message.reactionMessage.key?.id ?? null,
              participant: m.message.reactionMessage.key?.participant ?? null }
          : null,
        upsert: type,
        stub: m.messageStubType ?? null,
        stubParams: m.messageStubParameters ?? null,
      });
    }
  });
  sock.ev.on('messages.update', (updates) => {
    for (const { key, update } of updates) {
      if (update.status !== undefined) log({ event: 'update', id: key.id, remoteJid: key.remoteJid, status: update.status });
    }
  });
  sock.ev.on('group-participants.update', ({ id, action, participants }) =>
    log({ event: 'participants-update', id, action, participants }));
  sock.ev.on('groups.upsert', (groups) => log({ event: 'groups-upsert', ids: groups.map((g) => g.id) }));
}

createInterface({ input: process.stdin }).on('line', async (line) => {
  let c;
  try {
    c = JSON.parse(line);
  } catch {
    return log({ event: 'error', message: `not JSON: ${line}` });
  }
  try {
    if (!opened && c.cmd !== 'quit') throw new Error('not open');
    if (c.cmd === 'send') {
      const sent = await sock.sendMessage(c.to, { text: c.text });
      if (sent?.key?.id) sentMessages.set(sent.key.id, sent.message);
      log({ event: 'sent', id: sent?.key?.id, to: c.to });
    } else if (c.cmd === 'group-create') {
      log({ event: 'group', meta: brief(await sock.groupCreate(c.subject, c.participants)) });
    } else if (c.cmd === 'group-metadata') {
      log({ event: 'group', meta: brief(await sock.groupMetadata(c.jid)) });
    } else if (c.cmd === 'group-participants') {
      const result = await sock.groupParticipantsUpdate(c.jid, c.participants, c.action);
      log({ event: 'participants', result: result.map(({ status, jid }) => ({ status, jid })) });
    } else if (c.cmd === 'group-subject') {
      await sock.groupUpdateSubject(c.jid, c.subject);
      log({ event: 'subject-set' });
    } else if (c.cmd === 'groups') {
      const all = await sock.groupFetchAllParticipating();
      log({ event: 'groups', groups: Object.values(all).map(brief) });
    } else if (c.cmd === 'sender-key') {
      // useMultiFileAuthState names them sender-key-<group>--<author user>--<device>.json
      // (with ':' and '/' replaced); only this client's own keys for the group.
      const group = c.group.replace(/\//g, '__').replace(/:/g, '-');
      const keys = readdirSync(authDir)
        .filter((f) => f.startsWith(`sender-key-${group}`))
        .map((f) => {
          const buf = JSON.parse(readFileSync(join(authDir, f), 'utf-8'), BufferJSON.reviver);
          const states = JSON.parse(Buffer.from(buf).toString('utf-8'));
          return { file: f, keyIds: states.map((st) => st.senderKeyId) };
        });
      log({ event: 'sender-key', keys });
    } else if (c.cmd === 'quit') {
      quitting = true;
      sock.end(undefined);
      setTimeout(() => process.exit(0), 200);
    } else {
      log({ event: 'error', message: `unknown cmd ${c.cmd}` });
    }
  } catch (e) {
    log({ event: 'error', message: String(e?.stack || e) });
  }
});
start();
