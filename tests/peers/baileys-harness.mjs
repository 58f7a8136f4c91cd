// Drives the real npm Baileys client against our mock WhatsApp server (tests/whatsapp_baileys.rs).
// usage: node baileys-harness.mjs <ws-url> <admin-base-url> <auth-dir>
// With HARNESS_EXPECT_NO_QR=1 a QR code is a failure (login from saved creds). With
// HARNESS_PAIR_PHONE=<digits> it links by pairing code instead of scanning the QR.
// Prints one JSON line per step: qr, scan, close (with status code), open, state. Restarts the
// socket on 515 like the documented Baileys pattern. Exit 0 once `open` was reached.

import { makeWASocket, DisconnectReason, useMultiFileAuthState, P } from './baileys-load.mjs';

const [url, admin, authDir] = process.argv.slice(2);
if (!url || !admin || !authDir) {
  console.error('usage: node baileys-harness.mjs <ws-url> <admin-base-url> <auth-dir>');
  process.exit(2);
}
const logger = P({ level: process.env.BAILEYS_LOG || 'silent' });
const log = (o) => console.log(JSON.stringify(o));
const { state, saveCreds } = await useMultiFileAuthState(authDir);
let opened = false;
let sockets = 0;
let codeRequested = false;

setTimeout(() => {
  log({ event: 'timeout' });
  process.exit(4);
}, Number(process.env.HARNESS_TIMEOUT_MS || 60000)).unref();

function start() {
  sockets += 1;
  const sock = makeWASocket({
    waWebSocketUrl: url,
    auth: state,
    logger,
    markOnlineOnConnect: false,
    syncFullHistory: false,
  });
  sock.ev.on('creds.update', saveCreds);
  sock.ev.on('connection.update', async (u) => {
    if (u.qr) {
      log({ event: 'qr', qr: u.qr });
      if (process.env.HARNESS_EXPECT_NO_QR) process.exit(5);
      if (process.env.HARNESS_PAIR_PHONE) {
        if (codeRequested) return;
        codeRequested = true;
        const code = await sock.requestPairingCode(process.env.HARNESS_PAIR_PHONE);
        log({ event: 'pairing-code', code });
        // The user types the code on the phone (retry while the request is still in flight).
        for (let i = 0; i < 100; i++) {
          const r = await fetch(`${admin}/admin/pair-code`, { method: 'POST', body: code });
          if (r.status === 200) { log({ event: 'code-entered' }); break; }
          await new Promise((res) => setTimeout(res, 20));
        }
        return;
      }
      const r = await fetch(`${admin}/admin/scan`, { method: 'POST', body: u.qr });
      log({ event: 'scan', status: r.status, body: await r.json() });
    }
    if (u.connection === 'open') {
      opened = true;
      log({ event: 'open', jid: sock.user?.id, sockets });
      // Give the prekey upload (sent before 'open') time to be recorded, then report.
      await new Promise((r) => setTimeout(r, 300));
      const st = await (await fetch(`${admin}/admin/state`)).json();
      log({ event: 'state', state: st, registered: state.creds.me?.id, lid: state.creds.me?.lid });
      sock.end(undefined);
      process.exit(0);
    }
    if (u.connection === 'close') {
      const code = u.lastDisconnect?.error?.output?.statusCode;
      log({ event: 'close', code, message: u.lastDisconnect?.error?.message });
      if (code === DisconnectReason.restartRequired) start();
      else if (!opened) process.exit(3);
    }
  });
}
start();
