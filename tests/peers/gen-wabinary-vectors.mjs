// Generates tests/peers/wabinary-vectors.json with the pinned npm Baileys' own WABinary encoder and
// decoder (lib/WABinary). The committed JSON is checked by tests/whatsapp_binary_vectors.rs: our
// encoder must produce the same bytes and our decoder the same node Baileys decodes.
// Run: node tests/peers/gen-wabinary-vectors.mjs
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encodeBinaryNode } from 'baileys/lib/WABinary/encode.js';
import { decodeBinaryNode } from 'baileys/lib/WABinary/decode.js';

const b = (...xs) => Buffer.from(xs);
const seq = (n, f) => Array.from({ length: n }, (_, i) => f(i));
const nodes = [
  // reference §2
  { tag: 'iq', attrs: { id: '1', to: '@s.whatsapp.net', type: 'get', xmlns: 'w:p' }, content: [{ tag: 'ping', attrs: {} }] },
  { tag: 'iq', attrs: { to: '@s.whatsapp.net', type: 'result', id: 'abc' } },
  { tag: 'receipt', attrs: { to: '15550001234:7@s.whatsapp.net', id: '3EB0ABCDEF' } },
  { tag: 'message', attrs: { to: '123456789012345:7@lid', type: 'text' }, content: b(1, 2, 3) },
  { tag: 'stream:error', attrs: { code: '515' } },
  // more shapes
  { tag: 'success', attrs: { t: '1800000000', lid: '123456789012345:7@lid', location: 'frc' } },
  { tag: 'failure', attrs: { reason: '401' } },
  { tag: 'stream:error', attrs: {}, content: [{ tag: 'conflict', attrs: { type: 'replaced' } }] },
  { tag: 'ib', attrs: {}, content: [{ tag: 'downgrade_webclient', attrs: {} }] },
  { tag: 'iq', attrs: { from: 's.whatsapp.net', type: 'set', id: 'a1b2', xmlns: 'md' },
    content: [{ tag: 'pair-device', attrs: {}, content: seq(6, (i) => ({ tag: 'ref', attrs: {}, content: Buffer.from(`2@ref${i}+/=`) })) }] },
  { tag: 'iq', attrs: { to: 's.whatsapp.net', type: 'result', id: 'x' },
    content: [{ tag: 'pair-device-sign', attrs: {}, content: [{ tag: 'device-identity', attrs: { 'key-index': '7' }, content: Buffer.alloc(145, 7) }] }] },
  { tag: 'message', attrs: { from: '15550009999@s.whatsapp.net', id: 'ABCDEF0123456789', type: 'text', t: '17' },
    content: [{ tag: 'enc', attrs: { v: '2', type: 'pkmsg' }, content: Buffer.alloc(300, 0x33) }] },
  { tag: 'iq', attrs: { id: 'big', xmlns: 'encrypt', type: 'set', to: 's.whatsapp.net' },
    content: [{ tag: 'list', attrs: {}, content: seq(260, (i) => ({ tag: 'key', attrs: {}, content: [
      { tag: 'id', attrs: {}, content: b(0, (i >> 8) & 255, i & 255) },
      { tag: 'value', attrs: {}, content: Buffer.alloc(32, i & 255) }] })) }] },
  { tag: 'media', attrs: {}, content: Buffer.alloc(1000, 0xab) },
  { tag: 'x', attrs: { odd: '123', even: '1234', neg: '-1.5', hexodd: 'ABC', hexeven: 'AB12', plain: 'hello world', empty: '' } },
  { tag: 'x', attrs: { pair: 'user@g.us', bare: 'status@broadcast', hosted: '1555:3@hosted', hostedlid: '99:2@hosted.lid', dev0: '1555:0@s.whatsapp.net' } },
  { tag: 'x', attrs: { dbl: 'read-self', dbl2: 'group_call_discoverability_enabled' }, content: 'relay' },
  { tag: 'presence', attrs: { type: 'available', name: 'Ünïcödé ✓' } },
];

const hex = (u8) => Buffer.from(u8).toString('hex');
const toJson = (n) => ({
  tag: n.tag,
  attrs: Object.entries(n.attrs || {}),
  content: n.content === undefined || n.content === null ? null
    : Array.isArray(n.content) ? { nodes: n.content.map(toJson) }
    : typeof n.content === 'string' ? { text: n.content }
    : { bytes: hex(n.content) },
});

const vectors = [];
for (const n of nodes) {
  const enc = encodeBinaryNode(n);
  const dec = await decodeBinaryNode(Buffer.from(enc));
  vectors.push({ node: toJson(n), hex: hex(enc), decoded: toJson(dec) });
}
const out = { generator: 'tests/peers/gen-wabinary-vectors.mjs with baileys@7.0.0-rc14 encodeBinaryNode/decodeBinaryNode', vectors };
const target = fileURLToPath(new URL('./wabinary-vectors.json', import.meta.url));
// One vector per line keeps diffs readable and the file small.
const body = vectors.map((v) => JSON.stringify(v)).join(',\n');
writeFileSync(target, `{"generator":${JSON.stringify(out.generator)},"vectors":[\n${body}\n]}\n`);
console.log('wrote', target, vectors.length, 'vectors');
