// Cross-checks our XEdDSA and X25519 against libsignal-node (the npm `libsignal` Baileys uses),
// for tests/whatsapp_libsignal.rs. Reads JSON from stdin:
//   {"verify": [{"pub","msg","sig"}...], "sign": [{"priv","msg"}...], "dh": [{"priv","pub"}...]}
// (all hex) and prints {"verify": [bool...], "sign": [{"pub","sig"}...], "dh": [hex...]}.
// Uses libsignal's own verifySignature, which (unlike Baileys' Curve.verify wrapper) returns the
// real result.
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const curve = require('libsignal/src/curve.js');

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const h = (s) => Buffer.from(s, 'hex');
const out = {
  verify: (input.verify || []).map((v) => curve.verifySignature(h(v.pub), h(v.msg), h(v.sig)) === true),
  sign: (input.sign || []).map((s) => ({
    pub: curve.getPublicFromPrivateKey(h(s.priv)).slice(1).toString('hex'),
    sig: curve.calculateSignature(h(s.priv), h(s.msg)).toString('hex'),
  })),
  dh: (input.dh || []).map((d) => Buffer.from(curve.calculateAgreement(Buffer.concat([Buffer.from([5]), h(d.pub)]), h(d.priv))).toString('hex')),
};
console.log(JSON.stringify(out));
