// Generates tests/peers/signal-sender-vectors.json with Baileys' group cipher (its sender-key
// implementation on top of libsignal-node, what WhatsApp group members run) as the oracle for
// tests/whatsapp_signal_vectors.rs: a fixed sender key (id, chain key, signing key), its
// SenderKeyDistributionMessage, and six `skmsg`s. Signatures use fixed nonce randomness so the
// output is stable. Baileys as a sender uses iterations 0, 2, 4, … (it skips one per message).
// It also records a receiver's sender-key file as Baileys' auth folder stores it
// (`sender-key-<group>--<user>--<device>.json`) after two of the messages, for the import test.
// Run: node tests/peers/gen-signal-sender-vectors.mjs
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const require = createRequire(import.meta.url);
const curve = require('libsignal/src/curve.js');
const curveJs = require('curve25519-js');
// Deterministic XEdDSA nonces; patched before Baileys' modules bind the function.
let nonce = 0;
curve.calculateSignature = (priv, msg) =>
  Buffer.from(curveJs.sign(priv, msg, createHash('sha512').update(`openclaw sender nonce ${nonce++}`).digest()));
const { GroupCipher, GroupSessionBuilder, SenderKeyName, SenderKeyRecord } =
  await import('baileys/lib/Signal/Group/index.js');
const libsignal = require('libsignal');
const { BufferJSON } = await import('baileys/lib/Utils/generics.js');

const hex = (b) => Buffer.from(b).toString('hex');
const h = (label) => createHash('sha256').update(`openclaw sender ${label}`).digest();
const signingPriv = h('signing key');
const signingPub = curve.getPublicFromPrivateKey(signingPriv);
const keyId = 0x1234567;
const chainKey = h('chain key');

const records = new Map();
const store = {
  async loadSenderKey(name) { return records.get(name.toString()) || new SenderKeyRecord(); },
  async storeSenderKey(name, record) { records.set(name.toString(), record); },
};
const name = new SenderKeyName('120363000000000000@g.us', new libsignal.ProtocolAddress('15550003333', 0));
const record = new SenderKeyRecord();
record.setSenderKeyState(keyId, 0, chainKey, { public: signingPub, private: signingPriv });
records.set(name.toString(), record);
const skdm = await new GroupSessionBuilder(store).create(name);
const cipher = new GroupCipher(store, name);
const messages = [];
for (let i = 0; i < 6; i++) {
  const n = (i % 16) + 1;
  const pt = Buffer.concat([Buffer.from(`group message ${i}`), Buffer.alloc(n, n)]);
  messages.push({ plaintext: hex(pt), ciphertext: hex(await cipher.encrypt(pt)) });
}
// A fresh receiver with Baileys checks them before they are written.
const recvRecords = new Map();
const recvStore = {
  async loadSenderKey(n) { return recvRecords.get(n.toString()) || new SenderKeyRecord(); },
  async storeSenderKey(n, r) { recvRecords.set(n.toString(), r); },
};
await new GroupSessionBuilder(recvStore).process(name, skdm);
const recv = new GroupCipher(recvStore, name);
for (const m of messages) {
  if (hex(await recv.decrypt(Buffer.from(m.ciphertext, 'hex'))) !== m.plaintext) throw new Error('round trip');
}
// A receiver that read messages 0 and 3 (so it holds skipped keys), stored as Baileys stores it.
const midRecords = new Map();
const midStore = {
  async loadSenderKey(n) { return midRecords.get(n.toString()) || new SenderKeyRecord(); },
  async storeSenderKey(n, r) { midRecords.set(n.toString(), r); },
};
await new GroupSessionBuilder(midStore).process(name, skdm);
const mid = new GroupCipher(midStore, name);
for (const i of [0, 3]) await mid.decrypt(Buffer.from(messages[i].ciphertext, 'hex'));
const midFile = JSON.stringify(Buffer.from(JSON.stringify(midRecords.get(name.toString()).serialize()), 'utf-8'), BufferJSON.replacer);
const ownFile = JSON.stringify(Buffer.from(JSON.stringify(records.get(name.toString()).serialize()), 'utf-8'), BufferJSON.replacer);

writeFileSync(fileURLToPath(new URL('./signal-sender-vectors.json', import.meta.url)), JSON.stringify({
  generator: 'tests/peers/gen-signal-sender-vectors.mjs with baileys@7.0.0-rc14 (Signal/Group) on libsignal@6.0.0',
  keyId, chainKey: hex(chainKey), signingPrivate: hex(signingPriv), signingPublic: hex(signingPub.subarray(1)),
  distribution: hex(skdm.serialize()),
  messages,
  receiverFileAfter: [0, 3],
  receiverFile: midFile,
  senderFile: ownFile,
}, null, 1) + '\n');
console.log('wrote signal-sender-vectors.json');
