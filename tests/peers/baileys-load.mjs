// Loads the npm Baileys install the harnesses drive, and pino. BAILEYS_DIR selects the install
// (tests/peers for 7.x, tests/peers/baileys6 for 6.x); exports work for both module shapes.
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const base = process.env.BAILEYS_DIR || dirname(fileURLToPath(import.meta.url));
const load = (rel) => import(pathToFileURL(join(base, 'node_modules', rel)).href);
const B = await load('baileys/lib/index.js');
const pick = (name) => B[name] ?? B.default?.[name];
export const makeWASocket = typeof B.default === 'function' ? B.default : B.default?.default ?? pick('makeWASocket');
export const DisconnectReason = pick('DisconnectReason');
export const useMultiFileAuthState = pick('useMultiFileAuthState');
export const BufferJSON = pick('BufferJSON');
const pinoMod = await load('pino/pino.js');
export const P = pinoMod.default ?? pinoMod;

// A `getMessage` over a map of sent messages: a retry receipt can arrive before `sendMessage`
// has resolved and the message is in the map (a busy machine made tests flaky), so it waits a
// little (up to 5 s) for it.
export const getMessageFrom = (sent) => async (key) => {
  for (let i = 0; i < 100 && !sent.has(key.id); i++) await new Promise((r) => setTimeout(r, 50));
  return sent.get(key.id);
};
