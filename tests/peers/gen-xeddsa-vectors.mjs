// Generates tests/peers/xeddsa-vectors.json with libsignal-node (the npm `libsignal` Baileys uses):
// public keys, XEdDSA signatures and X25519 agreements for fixed private keys, so
// tests/whatsapp_xeddsa_vectors.rs checks our crypto against libsignal even where node is absent.
// Run: node tests/peers/gen-xeddsa-vectors.mjs
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const require = createRequire(import.meta.url);
const curve = require('libsignal/src/curve.js');

const vectors = [];
for (let i = 0; i < 8; i++) {
  const priv = createHash('sha256').update(`openclaw xeddsa ${i}`).digest();
  const other = createHash('sha256').update(`openclaw peer ${i}`).digest();
  const msg = Buffer.concat([Buffer.from([5]), createHash('sha512').update(`message ${i}`).digest().subarray(0, 10 + 7 * i)]);
  const pub = curve.getPublicFromPrivateKey(priv).subarray(1);
  const otherPub = curve.getPublicFromPrivateKey(other);
  vectors.push({
    private: priv.toString('hex'),
    public: pub.toString('hex'),
    message: msg.toString('hex'),
    signature: Buffer.from(curve.calculateSignature(priv, msg)).toString('hex'),
    peerPublic: otherPub.subarray(1).toString('hex'),
    shared: Buffer.from(curve.calculateAgreement(otherPub, priv)).toString('hex'),
  });
}
writeFileSync(fileURLToPath(new URL('./xeddsa-vectors.json', import.meta.url)),
  JSON.stringify({ generator: 'tests/peers/gen-xeddsa-vectors.mjs with libsignal@6.0.0 (via baileys@7.0.0-rc14)', vectors }, null, 1) + '\n');
console.log('wrote xeddsa-vectors.json');
