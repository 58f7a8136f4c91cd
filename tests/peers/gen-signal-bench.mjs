// Baseline for benches/signal.rs: libsignal-node (the npm `libsignal` Baileys uses) doing the same
// 1:1 loop as our core: one encrypt plus one decrypt per operation, in-memory stores, after the
// session is confirmed. Modes: "oneway" (A→B, no ratchet turn) and "pingpong" (A→B then B→A,
// a DH ratchet turn on every message), and "oneway-stored": one way with the session record
// deserialized before and serialized after every operation as Baileys' key store does (JSON of
// SessionRecord.serialize(), without the file write).
// usage: node gen-signal-bench.mjs <oneway|pingpong|oneway-stored> <milliseconds> <payload bytes>
// Prints {"opsPerSec": N, "ops": N}.
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const libsignal = require('libsignal');
const curve = require('libsignal/src/curve.js');

const [mode, ms, size] = process.argv.slice(2);
const stored = mode === 'oneway-stored';

class Store {
  constructor() {
    this.identity = curve.generateKeyPair();
    this.registrationId = 1234;
    this.sessions = new Map();
    this.preKeys = new Map();
    this.signedPreKeys = new Map();
  }
  async getOurIdentity() { return this.identity; }
  async getOurRegistrationId() { return this.registrationId; }
  async isTrustedIdentity() { return true; }
  async loadSession(id) {
    const s = this.sessions.get(id);
    return stored && s ? libsignal.SessionRecord.deserialize(JSON.parse(s)) : s;
  }
  async storeSession(id, record) { this.sessions.set(id, stored ? JSON.stringify(record.serialize()) : record); }
  async loadPreKey(id) { return this.preKeys.get(id); }
  async removePreKey(id) { this.preKeys.delete(id); }
  async loadSignedPreKey(id) { return this.signedPreKeys.get(id); }
}

const budget = Number(ms || 1000);
const payload = Buffer.alloc(Number(size || 64), 0x5a);
const a = new Store();
const b = new Store();
const signed = curve.generateKeyPair();
b.signedPreKeys.set(1, signed);
const aAddr = new libsignal.ProtocolAddress('a', 0);
const bAddr = new libsignal.ProtocolAddress('b', 0);
await new libsignal.SessionBuilder(a, bAddr).initOutgoing({
  registrationId: 1234, identityKey: b.identity.pubKey,
  signedPreKey: { keyId: 1, publicKey: signed.pubKey, signature: curve.calculateSignature(b.identity.privKey, signed.pubKey) },
});
const ac = new libsignal.SessionCipher(a, bAddr);
const bc = new libsignal.SessionCipher(b, aAddr);
const first = await ac.encrypt(payload);
await bc.decryptPreKeyWhisperMessage(first.body);
await ac.decryptWhisperMessage((await bc.encrypt(payload)).body);

let turn = 0;
async function op() {
  const [from, to] = mode === 'pingpong' && (turn++ & 1) ? [bc, ac] : [ac, bc];
  const m = await from.encrypt(payload);
  const pt = await to.decryptWhisperMessage(m.body);
  if (pt.length !== payload.length) throw new Error('round trip');
}
for (let i = 0; i < 200; i++) await op(); // warm up the JIT
let ops = 0;
const start = process.hrtime.bigint();
let elapsed = 0;
while (elapsed < budget) {
  for (let i = 0; i < 20; i++) await op();
  ops += 20;
  elapsed = Number(process.hrtime.bigint() - start) / 1e6;
}
console.log(JSON.stringify({ opsPerSec: ops / (elapsed / 1000), ops }));
