// Generates tests/peers/signal-vectors.json with libsignal-node (the npm `libsignal` Baileys uses)
// as the oracle for tests/whatsapp_signal_vectors.rs: a pairwise conversation between two
// libsignal endpoints, Alice (initiator, from Bob's prekey bundle) and Bob, with out-of-order
// delivery and several ratchet turns. libsignal's key generation is replaced by fixed keys (each
// recorded with its owner, in order), so the whole transcript is deterministic and our core can
// replay either side byte for byte. It also records Bob's session as Baileys stores it
// (`session-*.json`) mid-conversation, for the import test.
// Run: node tests/peers/gen-signal-vectors.mjs
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const require = createRequire(import.meta.url);
const libsignal = require('libsignal');
const curve = require('libsignal/src/curve.js');

// Session records carry timestamps; a fixed clock keeps the output stable.
let clock = 1_800_000_000_000;
Date.now = () => clock++;
const hex = (b) => Buffer.from(b).toString('hex');
const fixedKey = (label) => {
  const privKey = createHash('sha256').update(`openclaw signal ${label}`).digest();
  return { privKey, pubKey: curve.getPublicFromPrivateKey(privKey) };
};

// Deterministic key generation: every key libsignal generates is recorded with its owner.
let actor = null;
const steps = [];
let counter = 0;
const generated = [];
curve.generateKeyPair = () => {
  const k = fixedKey(`generated ${counter++}`);
  generated.push({ owner: actor, atStep: steps.length, private: hex(k.privKey), public: hex(k.pubKey.subarray(1)) });
  return k;
};

class Store {
  constructor(identity, registrationId) {
    this.identity = identity;
    this.registrationId = registrationId;
    this.sessions = new Map();
    this.preKeys = new Map();
    this.signedPreKeys = new Map();
  }
  async getOurIdentity() { return this.identity; }
  async getOurRegistrationId() { return this.registrationId; }
  async isTrustedIdentity() { return true; }
  async loadSession(id) { return this.sessions.get(id); }
  async storeSession(id, record) { this.sessions.set(id, record); }
  async loadPreKey(id) { return this.preKeys.get(id); }
  async removePreKey(id) { this.preKeys.delete(id); }
  async loadSignedPreKey(id) { return this.signedPreKeys.get(id); }
}

const aliceIdentity = fixedKey('alice identity');
const bobIdentity = fixedKey('bob identity');
const bobSigned = fixedKey('bob signed prekey');
const bobOneTime = fixedKey('bob one-time prekey');
const alice = new Store(aliceIdentity, 1111);
const bob = new Store(bobIdentity, 2222);
bob.signedPreKeys.set(7, bobSigned);
bob.preKeys.set(31, bobOneTime);
// XEdDSA signatures are randomised; this one uses fixed nonce randomness, and libsignal checks it.
const signature = Buffer.from(require('curve25519-js').sign(bobIdentity.privKey, bobSigned.pubKey,
  createHash('sha512').update('openclaw signal nonce').digest()));
curve.verifySignature(bobIdentity.pubKey, bobSigned.pubKey, signature);

const bobAddr = new libsignal.ProtocolAddress('15550002222', 0);
const aliceAddr = new libsignal.ProtocolAddress('15550001111', 0);
const aliceCipher = new libsignal.SessionCipher(alice, bobAddr);
const bobCipher = new libsignal.SessionCipher(bob, aliceAddr);

actor = 'alice';
await new libsignal.SessionBuilder(alice, bobAddr).initOutgoing({
  registrationId: 2222,
  identityKey: bobIdentity.pubKey,
  signedPreKey: { keyId: 7, publicKey: bobSigned.pubKey, signature },
  preKey: { keyId: 31, publicKey: bobOneTime.pubKey },
});

// WhatsApp-style padded plaintexts: n bytes of value n after the text.
const plain = (label, i) => {
  const n = (i % 16) + 1;
  return Buffer.concat([Buffer.from(`${label} message ${i}`), Buffer.alloc(n, n)]);
};


const sent = { alice: [], bob: [] };
const ciphers = { alice: aliceCipher, bob: bobCipher };
async function send(who, i) {
  actor = who;
  const pt = plain(who, i);
  const { type, body } = await ciphers[who].encrypt(pt);
  const c = { type: type === 3 ? 'pkmsg' : 'msg', ciphertext: hex(body), plaintext: hex(pt) };
  sent[who].push(c);
  steps.push({ actor: who, op: 'encrypt', ...c });
}
async function receive(who, from, i) {
  actor = who;
  const c = sent[from][i];
  const body = Buffer.from(c.ciphertext, 'hex');
  const pt = c.type === 'pkmsg'
    ? await ciphers[who].decryptPreKeyWhisperMessage(body)
    : await ciphers[who].decryptWhisperMessage(body);
  if (hex(pt) !== c.plaintext) throw new Error('libsignal round trip failed');
  steps.push({ actor: who, op: 'decrypt', ...c });
}

const snapshots = [];
function snapshot() {
  // What Baileys' useMultiFileAuthState writes for session-15550001111.0.json.
  const { BufferJSON } = globalThis.__bufferJSON;
  const record = bob.sessions.get(aliceAddr.toString());
  snapshots.push({
    atStep: steps.length,
    owner: 'bob',
    file: 'session-15550001111.0.json',
    json: JSON.stringify(record.serialize(), BufferJSON.replacer),
  });
}
globalThis.__bufferJSON = await import('baileys').catch(() => null);
if (!globalThis.__bufferJSON || !globalThis.__bufferJSON.BufferJSON) {
  // Baileys' replacer only rewrites Buffers; a session record holds none after serialize().
  globalThis.__bufferJSON = { BufferJSON: { replacer: (_k, v) => v } };
}

// Alice: three pkmsgs; Bob receives them out of order.
await send('alice', 0); await send('alice', 1); await send('alice', 2);
await receive('bob', 'alice', 0); await receive('bob', 'alice', 2); await receive('bob', 'alice', 1);
// Bob answers twice (first ratchet turn); Alice receives them out of order.
await send('bob', 0); await send('bob', 1);
await receive('alice', 'bob', 1); await receive('alice', 'bob', 0);
snapshot();
// Alice on a new chain: 3 messages, Bob gets the last one first.
await send('alice', 3); await send('alice', 4); await send('alice', 5);
await receive('bob', 'alice', 5); await receive('bob', 'alice', 3);
// Bob answers; Alice answers; the straggler on Alice's old chain arrives last.
await send('bob', 2);
await receive('alice', 'bob', 2);
await send('alice', 6); await send('alice', 7);
await receive('bob', 'alice', 7);
await receive('bob', 'alice', 4);
await receive('bob', 'alice', 6);
await send('bob', 3);
await receive('alice', 'bob', 3);

const out = {
  generator: 'tests/peers/gen-signal-vectors.mjs with libsignal@6.0.0 (via baileys@7.0.0-rc14)',
  alice: { identityPrivate: hex(aliceIdentity.privKey), identityPublic: hex(aliceIdentity.pubKey.subarray(1)), registrationId: 1111 },
  bob: {
    identityPrivate: hex(bobIdentity.privKey), identityPublic: hex(bobIdentity.pubKey.subarray(1)), registrationId: 2222,
    signedPreKeyId: 7, signedPreKeyPrivate: hex(bobSigned.privKey), signedPreKeyPublic: hex(bobSigned.pubKey.subarray(1)),
    signedPreKeySignature: hex(signature),
    preKeyId: 31, preKeyPrivate: hex(bobOneTime.privKey), preKeyPublic: hex(bobOneTime.pubKey.subarray(1)),
  },
  generatedKeys: generated,
  steps,
  snapshots,
};
writeFileSync(fileURLToPath(new URL('./signal-vectors.json', import.meta.url)), JSON.stringify(out, null, 1) + '\n');
console.log(`wrote signal-vectors.json: ${steps.length} steps, ${generated.length} generated keys`);
