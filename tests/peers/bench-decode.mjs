// Baseline for benches/whatsapp_codec.rs: Baileys' own WABinary decoder on the same input.
// usage: node bench-decode.mjs <file with one hex-encoded stanza (no flags byte)> <milliseconds>
// Prints {"mbPerSec": N, "iterations": N}.
import { readFileSync } from 'node:fs';
import * as constants from 'baileys/lib/WABinary/constants.js';
import { decodeDecompressedBinaryNode } from 'baileys/lib/WABinary/decode.js';

const [file, ms] = process.argv.slice(2);
const buf = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
const budget = Number(ms || 1000);
for (let i = 0; i < 200; i++) decodeDecompressedBinaryNode(buf, constants, { index: 0 }); // warm up the JIT
let iterations = 0;
const start = process.hrtime.bigint();
let elapsed = 0;
while (elapsed < budget) {
  for (let i = 0; i < 50; i++) decodeDecompressedBinaryNode(buf, constants, { index: 0 });
  iterations += 50;
  elapsed = Number(process.hrtime.bigint() - start) / 1e6;
}
console.log(JSON.stringify({ mbPerSec: (buf.length * iterations) / (elapsed / 1000) / 1e6, iterations }));
