// A live libsignal-node endpoint (the npm `libsignal` Baileys uses) for
// tests/whatsapp_signal_interop.rs: one JSON request per stdin line, one JSON answer per stdout
// line. Keys are random (real libsignal behaviour); the Rust side is the other endpoint.
// Requests:
//   {op:"bundle"}                       -> our prekey bundle (for the Rust side to start a session)
//   {op:"start", bundle:{...}}          -> start a session to the Rust side from its bundle
//   {op:"encrypt", plaintext}           -> {type:"pkmsg"|"msg", body}
//   {op:"decrypt", type, body}          -> {plaintext} or {error}
//   {op:"groupSend", count}             -> Baileys' group cipher as a sender: {skdm, messages}
//   {op:"groupReceive", skdm, messages} -> Baileys' group cipher as a receiver: {plaintexts} or {error}
//   {op:"handover", rounds}             -> a second libsignal endpoint talks with us for `rounds`
//                                          turns, then hands over its identity and its session
//                                          file (Baileys' session-*.json) for the Rust side to import
// Byte fields are hex. Run by the test; not meant to be run by hand.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
const require = createRequire(import.meta.url);
const libsignal = require('libsignal');
const curve = require('libsignal/src/curve.js');

const group = await import('baileys/lib/Signal/Group/index.js');
const groupRecords = new Map();
const groupStore = {
  async loadSenderKey(n) { return groupRecords.get(n.toString()) || new group.SenderKeyRecord(); },
  async storeSenderKey(n, r) { groupRecords.set(n.toString(), r); },
};
const groupId = '120363000000000001@g.us';
const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => Buffer.from(s, 'hex');
const pub33 = (s) => Buffer.concat([Buffer.from([5]), unhex(s)]);

class Store {
  constructor() {
    this.identity = curve.generateKeyPair();
    this.registrationId = 1 + Math.floor(Math.random() * 16380);
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

function makeBundle(store) {
  const signed = curve.generateKeyPair();
  const one = curve.generateKeyPair();
  store.signedPreKeys.set(5, signed);
  store.preKeys.set(40, one);
  return {
    registrationId: store.registrationId,
    identityKey: store.identity.pubKey,
    signedPreKey: { keyId: 5, publicKey: signed.pubKey, signature: curve.calculateSignature(store.identity.privKey, signed.pubKey) },
    preKey: { keyId: 40, publicKey: one.pubKey },
  };
}

const me = new Store();
const rustAddr = new libsignal.ProtocolAddress('15550000001', 0);
const cipher = new libsignal.SessionCipher(me, rustAddr);

async function decryptWith(c, type, body) {
  return type === 'pkmsg' ? c.decryptPreKeyWhisperMessage(body) : c.decryptWhisperMessage(body);
}
const typeName = (t) => (t === 3 ? 'pkmsg' : 'msg');

async function handle(req) {
  switch (req.op) {
    case 'bundle': {
      const b = makeBundle(me);
      return {
        registrationId: b.registrationId, identityKey: hex(b.identityKey.subarray(1)),
        signedPreKeyId: 5, signedPreKey: hex(b.signedPreKey.publicKey.subarray(1)),
        signature: hex(b.signedPreKey.signature), preKeyId: 40, preKey: hex(b.preKey.publicKey.subarray(1)),
      };
    }
    case 'start': {
      const b = req.bundle;
      const device = {
        registrationId: b.registrationId, identityKey: pub33(b.identityKey),
        signedPreKey: { keyId: b.signedPreKeyId, publicKey: pub33(b.signedPreKey), signature: unhex(b.signature) },
      };
      if (b.preKey) device.preKey = { keyId: b.preKeyId, publicKey: pub33(b.preKey) };
      await new libsignal.SessionBuilder(me, rustAddr).initOutgoing(device);
      return {};
    }
    case 'encrypt': {
      const { type, body } = await cipher.encrypt(unhex(req.plaintext));
      return { type: typeName(type), body: hex(body) };
    }
    case 'decrypt':
      try {
        return { plaintext: hex(await decryptWith(cipher, req.type, unhex(req.body))) };
      } catch (e) {
        return { error: String(e && e.message || e) };
      }
    case 'groupSend': {
      const name = new group.SenderKeyName(groupId, new libsignal.ProtocolAddress('15550000009', 0));
      const skdm = await new group.GroupSessionBuilder(groupStore).create(name);
      const c = new group.GroupCipher(groupStore, name);
      const messages = [];
      for (let i = 0; i < req.count; i++) messages.push(hex(await c.encrypt(Buffer.from(`baileys group ${i}`))));
      return { skdm: hex(skdm.serialize()), messages };
    }
    case 'groupReceive': {
      const name = new group.SenderKeyName(groupId, rustAddr);
      const skdm = new group.SenderKeyDistributionMessage(null, null, null, null, unhex(req.skdm));
      await new group.GroupSessionBuilder(groupStore).process(name, skdm);
      const c = new group.GroupCipher(groupStore, name);
      try {
        const plaintexts = [];
        for (const m of req.messages) plaintexts.push(hex(await c.decrypt(unhex(m))));
        return { plaintexts };
      } catch (e) {
        return { error: String(e && e.message || e) };
      }
    }
    case 'handover': {
      // The other endpoint lives at the Rust side's address; we are at `peerAddr` for it.
      const other = new Store();
      const peerAddr = new libsignal.ProtocolAddress('15550000002', 0);
      const otherCipher = new libsignal.SessionCipher(other, peerAddr);
      await new libsignal.SessionBuilder(other, peerAddr).initOutgoing(makeBundle(me));
      for (let r = 0; r < req.rounds; r++) {
        for (let i = 0; i < 2; i++) {
          const m = await otherCipher.encrypt(Buffer.from(`handover ${r}.${i}`));
          await decryptWith(cipher, typeName(m.type), m.body);
        }
        const m = await cipher.encrypt(Buffer.from(`reply ${r}`));
        await decryptWith(otherCipher, typeName(m.type), m.body);
      }
      // One message still in flight from us when the import happens.
      const inFlight = await cipher.encrypt(Buffer.from('in flight'));
      const record = other.sessions.get(peerAddr.toString());
      return {
        identityPrivate: hex(other.identity.privKey), identityPublic: hex(other.identity.pubKey.subarray(1)),
        registrationId: other.registrationId,
        sessionJson: JSON.stringify(record.serialize()),
        inFlight: { type: typeName(inFlight.type), body: hex(inFlight.body) },
      };
    }
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let out;
  try {
    out = await handle(JSON.parse(line));
  } catch (e) {
    out = { fatal: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
