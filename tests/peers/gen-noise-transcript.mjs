// Generates tests/peers/noise-transcript.json: a complete Noise XX handshake plus transport frames
// in which the CLIENT is the real Baileys noise handler (lib/Utils/noise-handler.js of the pinned
// baileys@7.0.0-rc14) with fixed keys. The server side is a minimal responder written here from the
// reference (§1.3); Baileys accepting its ServerHello and decrypting its frames is what validates it.
// tests/whatsapp_noise_transcript.rs then requires our Rust initiator and responder to reproduce
// these bytes exactly. Run: node tests/peers/gen-noise-transcript.mjs
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import P from 'pino';
import { proto } from 'baileys/WAProto/index.js';
import { NOISE_WA_HEADER, NOISE_MODE } from 'baileys/lib/Defaults/index.js';
import { makeNoiseHandler } from 'baileys/lib/Utils/noise-handler.js';
import { aesDecryptGCM, aesEncryptGCM, Curve, hkdf } from 'baileys/lib/Utils/crypto.js';
import { encodeBinaryNode } from 'baileys/lib/WABinary/encode.js';

const sha256 = (...parts) => createHash('sha256').update(Buffer.concat(parts)).digest();
const fixedKey = (label) => {
  const k = sha256(Buffer.from(label));
  k[0] &= 248; k[31] &= 127; k[31] |= 64; // clamped, so every implementation agrees
  const pub = Curve.sharedKey(k, Buffer.from([9, ...Array(31).fill(0)])); // X25519 base point
  return { private: k, public: pub };
};
const clientEph = fixedKey('openclaw client ephemeral');
const noiseKey = fixedKey('openclaw client noise key');
const serverEph = fixedKey('openclaw server ephemeral');
const serverStatic = fixedKey('openclaw server static');
const ivOf = (n) => { const iv = Buffer.alloc(12); iv.writeUInt32BE(n, 8); return iv; };

// Certificate chain: Baileys checks shapes and intermediate.issuerSerial == 0 (its signature
// checks are vacuous, reference §1.4), so fixed bytes suffice for a transcript.
const details = (serial, issuerSerial, key) => proto.CertChain.NoiseCertificate.Details.encode({ serial, issuerSerial, key }).finish();
const cert = proto.CertChain.encode({
  intermediate: { details: details(2, 0, Buffer.alloc(32, 0x11)), signature: Buffer.alloc(64, 0x22) },
  leaf: { details: details(7, 2, serverStatic.public), signature: Buffer.alloc(64, 0x33) },
}).finish();

// --- client (Baileys) hello
const client = makeNoiseHandler({ keyPair: clientEph, NOISE_HEADER: NOISE_WA_HEADER, logger: P({ level: 'silent' }) });

// --- server (this script) from the reference
let h = Buffer.from(NOISE_MODE); let ck = h; let k = h; let n = 0;
const mixHash = (d) => { h = sha256(h, d); };
const mixKey = (ikm) => { const o = hkdf(Buffer.from(ikm), 64, { salt: ck, info: '' }); ck = o.subarray(0, 32); k = o.subarray(32); n = 0; };
const encAndHash = (pt) => { const c = aesEncryptGCM(pt, k, ivOf(n++), h); mixHash(c); return c; };
const decAndHash = (c) => { const p = aesDecryptGCM(c, k, ivOf(n++), h); mixHash(c); return p; };
mixHash(NOISE_WA_HEADER); mixHash(clientEph.public); mixHash(serverEph.public);
mixKey(Curve.sharedKey(serverEph.private, clientEph.public));
const encStatic = encAndHash(serverStatic.public);
mixKey(Curve.sharedKey(serverStatic.private, clientEph.public));
const encPayload = encAndHash(cert);

// --- client processes ServerHello and finishes
const keyEnc = client.processHandshake({ serverHello: { ephemeral: serverEph.public, static: encStatic, payload: encPayload } }, noiseKey);
const clientPayload = Buffer.from(proto.ClientPayload.encode({ username: 15550001234, device: 7, passive: true, pull: true }).finish());
const payloadEnc = client.encrypt(clientPayload);
await client.finishInit();

// --- server reads ClientFinish and splits
const gotStatic = decAndHash(keyEnc);
mixKey(Curve.sharedKey(serverEph.private, gotStatic));
const gotPayload = decAndHash(payloadEnc);
if (Buffer.compare(gotStatic, noiseKey.public) || Buffer.compare(gotPayload, clientPayload)) throw new Error('server side disagrees');
const split = hkdf(Buffer.alloc(0), 64, { salt: ck, info: '' });
const [k1, k2] = [split.subarray(0, 32), split.subarray(32)];

// --- transport: client frames (Baileys encodeFrame), server frames decrypted by Baileys
const nodes = [
  { tag: 'iq', attrs: { id: '1', to: '@s.whatsapp.net', type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {} }] },
  { tag: 'presence', attrs: { type: 'available' } },
];
const plain = nodes.map((x) => Buffer.from(encodeBinaryNode(x)));
const clientFrames = plain.map((p) => {
  const f = client.encodeFrame(p);
  return f.subarray(f.length - (p.length + 16)); // strip the intro (first frame) and the 3-byte length
});
clientFrames.forEach((c, i) => { if (Buffer.compare(aesDecryptGCM(c, k1, ivOf(i), Buffer.alloc(0)), plain[i])) throw new Error('client frame'); });
const serverFrames = plain.map((p, i) => aesEncryptGCM(p, k2, ivOf(i), Buffer.alloc(0)));
const wire = Buffer.concat(serverFrames.map((c) => Buffer.concat([Buffer.from([0, c.length >> 8, c.length & 255]), c])));
const decoded = [];
await client.decodeFrame(wire, (f) => decoded.push(f.tag));
if (decoded.join() !== 'iq,presence') throw new Error(`Baileys did not decrypt the server frames: ${decoded}`);

const hex = (b) => Buffer.from(b).toString('hex');
const out = {
  generator: 'tests/peers/gen-noise-transcript.mjs; client = baileys@7.0.0-rc14 makeNoiseHandler',
  keys: { clientEphemeral: hex(clientEph.private), noiseKey: hex(noiseKey.private), serverEphemeral: hex(serverEph.private), serverStatic: hex(serverStatic.private) },
  clientHelloEphemeral: hex(clientEph.public),
  serverHello: { ephemeral: hex(serverEph.public), static: hex(encStatic), payload: hex(encPayload) },
  certChain: hex(cert),
  clientPayload: hex(clientPayload),
  clientFinish: { static: hex(keyEnc), payload: hex(payloadEnc) },
  plaintexts: plain.map(hex),
  clientFrames: clientFrames.map(hex),
  serverFrames: serverFrames.map(hex),
};
writeFileSync(fileURLToPath(new URL('./noise-transcript.json', import.meta.url)), JSON.stringify(out, null, 1) + '\n');
console.log('wrote noise-transcript.json');
