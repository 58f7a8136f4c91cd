// OpenClaw Control UI: plain JavaScript, no build step, no dependencies.
// It speaks the gateway's WebSocket control protocol: wait for `connect.challenge`, send
// `connect` with the gateway token (and, where the browser can sign with Ed25519, a device
// identity that the gateway pairs), then `req` frames; `event` frames push device requests.
"use strict";

const BASE = document.documentElement.dataset.base || "";
const $ = (sel) => document.querySelector(sel);
const main = $("#main");

// ---------- small helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function fmtTime(ms) {
  if (!ms) return "—";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function relTime(ms) {
  const d = Math.round((ms - Date.now()) / 1000);
  const a = Math.abs(d);
  const span = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : `${Math.floor(a / 3600)} h ${Math.round((a % 3600) / 60)} min`;
  return a < 5 ? "now" : d > 0 ? `in ${span}` : `${span} ago`;
}

function when(ms) {
  return ms ? `${fmtTime(ms)} (${relTime(ms)})` : "—";
}

function yesNo(v) {
  return h("span", { class: v ? "yes" : "no" }, v ? "Yes" : "No");
}

function kv(rows) {
  return h("dl", { class: "kv" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// ---------- the connection ----------

const TOKEN_KEY = "openclaw.control.token";
const DEVICE_KEY = "openclaw.control.device";

const gw = {
  ws: null,
  nextId: 1,
  pending: new Map(),
  listeners: new Set(),
  hello: null,

  request(method, params = {}) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return reject(new Error("not connected"));
      const id = `ui${this.nextId++}`;
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ type: "req", id, method, params }));
    });
  },
};

function setConn(text, cls) {
  const el = $("#conn");
  el.textContent = text;
  el.className = `pill ${cls || ""}`;
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromB64url(s) {
  const t = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(t, (c) => c.charCodeAt(0));
}

// The browser's device identity: an Ed25519 key kept in localStorage (as upstream's UI does).
// Returns null where WebCrypto has no Ed25519; the UI then connects with the token alone.
async function deviceIdentity() {
  try {
    let saved = JSON.parse(localStorage.getItem(DEVICE_KEY) || "null");
    if (!saved) {
      const kp = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
      const pub = await crypto.subtle.exportKey("raw", kp.publicKey);
      const priv = await crypto.subtle.exportKey("pkcs8", kp.privateKey);
      saved = { pub: b64url(pub), priv: b64url(priv) };
      localStorage.setItem(DEVICE_KEY, JSON.stringify(saved));
    }
    const key = await crypto.subtle.importKey("pkcs8", fromB64url(saved.priv), { name: "Ed25519" }, false, ["sign"]);
    const digest = await crypto.subtle.digest("SHA-256", fromB64url(saved.pub));
    const id = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    return { id, publicKey: saved.pub, key };
  } catch (e) {
    return null;
  }
}

async function connectParams(challenge, token) {
  const client = { id: "openclaw-control-ui", version: "control-ui", platform: "web", mode: "webchat" };
  const role = "operator";
  const scopes = ["operator.admin"];
  const params = { minProtocol: 3, maxProtocol: 4, client, role, scopes, auth: token ? { token } : {} };
  const dev = await deviceIdentity();
  if (dev) {
    // v3|deviceId|clientId|clientMode|role|scopes|signedAtMs|token|nonce|platform|deviceFamily
    const payload = ["v3", dev.id, client.id, client.mode, role, scopes.join(","), challenge.ts, token || "", challenge.nonce, "web", ""].join("|");
    const sig = await crypto.subtle.sign({ name: "Ed25519" }, dev.key, new TextEncoder().encode(payload));
    params.device = { id: dev.id, publicKey: dev.publicKey, signature: b64url(sig), signedAt: challenge.ts, nonce: challenge.nonce };
  }
  return params;
}

function showLogin(why) {
  $("#login").hidden = false;
  $("#login-why").textContent = why;
  main.hidden = true;
}

function connect() {
  const token = localStorage.getItem(TOKEN_KEY) || "";
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${BASE || "/"}`;
  const ws = new WebSocket(url);
  gw.ws = ws;
  setConn("connecting…");
  ws.onmessage = async (ev) => {
    const f = JSON.parse(ev.data);
    if (f.type === "event" && f.event === "connect.challenge") {
      const params = await connectParams(f.payload, token);
      ws.send(JSON.stringify({ type: "req", id: "connect", method: "connect", params }));
      return;
    }
    if (f.type === "res" && f.id === "connect") {
      if (f.ok) {
        gw.hello = f.payload;
        setConn("connected", "ok");
        $("#login").hidden = true;
        main.hidden = false;
        route();
      } else {
        const e = f.error || {};
        setConn("refused", "bad");
        if (e.message && e.message.startsWith("pairing required")) {
          const rid = e.details && e.details.requestId;
          showLogin(`This browser waits for approval as a new device. On the gateway host run: openclaw devices approve ${rid || "<requestId>"} (or approve it from the Devices page of an approved browser). This page retries by itself.`);
          setTimeout(() => { if (!$("#login").hidden) connect(); }, 5000);
        } else {
          showLogin(`The gateway refused the connection: ${e.message || "unknown error"}.`);
        }
      }
      return;
    }
    if (f.type === "res" && gw.pending.has(f.id)) {
      const p = gw.pending.get(f.id);
      gw.pending.delete(f.id);
      if (f.ok) p.resolve(f.payload);
      else p.reject(new Error((f.error && f.error.message) || "request failed"));
      return;
    }
    if (f.type === "event") for (const l of gw.listeners) l(f);
  };
  ws.onclose = (ev) => {
    for (const p of gw.pending.values()) p.reject(new Error("connection closed"));
    gw.pending.clear();
    if (!$("#login").hidden) return;
    setConn(`disconnected (${ev.code}); retrying`, "bad");
    setTimeout(connect, 2000);
  };
}

// ---------- pages ----------

let pageTimer = null;
let pageGen = 0;

function every(ms, fn) {
  fn();
  pageTimer = setInterval(fn, ms);
}

function errorBox(e) {
  return h("div", { class: "msg err" }, e.message || String(e));
}

const pages = {
  async overview() {
    const [st, health] = await Promise.all([gw.request("status"), gw.request("health")]);
    const snap = (gw.hello && gw.hello.snapshot) || {};
    return [
      h("h2", {}, "Overview"),
      h("div", { class: "card" }, kv([
        ["Version", st.version],
        ["Uptime", `${st.uptimeMs < 60000 ? `${Math.round(st.uptimeMs / 1000)} s` : `${Math.round(st.uptimeMs / 60000)} min`} (since ${fmtTime(Date.now() - st.uptimeMs)})`],
        ["Listening", st.listen],
        ["Process", `pid ${st.pid}`],
        ["State dir", st.stateDir],
        ["Config files", (st.configPaths || []).join(", ") || "—"],
        ["Auth", `${st.auth.mode}, token ${st.auth.tokenFingerprint || "none"}`],
        ["Hooks", st.hooks.enabled ? `enabled at ${st.hooks.path}, token ${st.hooks.tokenFingerprint}` : "disabled"],
        ["Runs", `${st.runs.accepted} accepted, ${st.runs.done} done, ${st.runs.failed} failed`],
        ["Devices", `${st.devices.paired} paired, ${st.devices.pending} pending`],
        ["Health", `${health.status}${snap.authMode ? `, auth ${snap.authMode}` : ""}`],
      ])),
    ];
  },

  async channels(gen) {
    const box = h("div", {});
    const link = { account: null, qr: null, message: null, kind: "", until: null };
    let busy = false;

    async function render() {
      if (gen !== pageGen) return;
      let list;
      try {
        list = (await gw.request("channels.status")).channels || [];
      } catch (e) {
        box.replaceChildren(errorBox(e));
        return;
      }
      if (gen !== pageGen) return;
      if (!list.length) {
        box.replaceChildren(h("div", { class: "card" }, "No channel accounts are configured. Add channels.whatsapp to the config (NixOS: services.openclaw.settings.channels.whatsapp) and restart the gateway."));
        return;
      }
      box.replaceChildren(...list.map(card));
    }

    function card(c) {
      const mine = link.account === c.account;
      const linkAllowed = c.linkAllowedAt && c.linkAllowedAt > Date.now() ? c.linkAllowedAt : null;
      const rows = [
        ["Configured", yesNo(c.configured)],
        ["Linked", yesNo(c.linked)],
        ["Connected", yesNo(c.connected)],
        ["Phone number", c.phone || "—"],
        ["Linked as", (c.self && c.self.jid) || "—"],
        ["State", `${c.state}: ${c.detail}`],
        ["Last disconnect", c.lastDisconnect ? `${c.lastDisconnect.reason} (${c.lastDisconnect.code}) at ${when(c.lastDisconnect.atMs)}` : "—"],
        ["Next attempt", when(c.nextAttemptAt)],
        ["New link allowed", linkAllowed ? when(linkAllowed) : "now"],
      ];
      if (c.lastError) rows.push(["Last error", c.lastError]);
      const actions = h("div", { class: "actions" },
        h("button", { class: "primary", onclick: () => startLink(c.account, c.linked) }, c.linked ? "Relink" : "Link"),
        c.linked ? logoutButton(c.account) : null,
        h("button", { onclick: render }, "Refresh"),
      );
      const extra = [];
      if (mine && link.qr) extra.push(h("div", { class: "qr" }, h("img", { id: "qr", alt: "WhatsApp link QR code", src: link.qr })));
      if (mine && link.kind === "good" && c.connected && c.phone) link.message = `Linked and connected as ${c.phone}.`;
      if (mine && link.message) {
        const text = link.until ? `${link.message} Next attempt allowed ${when(link.until)}.` : link.message;
        extra.push(h("div", { class: `msg ${link.kind}`, id: "link-msg" }, text));
      }
      const headline = c.connected ? "Connected" : c.linked ? "Linked" : "Not linked";
      return h("div", { class: "card", "data-account": c.account },
        h("h3", {}, `WhatsApp — ${c.account} · `, h("span", { class: c.connected ? "yes" : c.linked ? "warn" : "no", id: `headline-${c.account}` }, headline)),
        kv(rows), actions, ...extra);
    }

    function logoutButton(account) {
      const wrap = h("span", {});
      const ask = h("button", { class: "danger", onclick: () => {
        wrap.replaceChildren(
          h("span", {}, "Unlink this number from WhatsApp and move its credentials aside? "),
          h("button", { class: "danger", onclick: async () => {
            try {
              const r = await gw.request("channels.logout", { channel: "whatsapp", accountId: account });
              Object.assign(link, { account, qr: null, message: r.message, kind: r.toldWhatsApp === false ? "err" : "good", until: null });
            } catch (e) {
              Object.assign(link, { account, qr: null, message: e.message, kind: "err", until: null });
            }
            render();
          } }, "Yes, log out"),
          h("button", { onclick: render }, "Cancel"));
      } }, "Log out");
      wrap.append(ask);
      return wrap;
    }

    async function startLink(account, force) {
      if (busy) return;
      busy = true;
      Object.assign(link, { account, qr: null, message: "Asking WhatsApp for a QR code…", kind: "", until: null });
      render();
      try {
        let r = await gw.request("web.login.start", { channel: "whatsapp", accountId: account, force: !!force, timeoutMs: 20000 });
        while (gen === pageGen) {
          if (r.connected) {
            Object.assign(link, { qr: null, message: `${r.message}. Waiting for the connection…`, kind: "good", until: null });
            render();
            break;
          }
          if (!r.qrDataUrl) {
            Object.assign(link, { qr: null, message: r.message, kind: "err", until: r.nextAllowedAt || null });
            render();
            break;
          }
          if (r.qrDataUrl !== link.qr) {
            Object.assign(link, { qr: r.qrDataUrl, message: r.message, kind: "" });
            render();
          }
          r = await gw.request("web.login.wait", { channel: "whatsapp", accountId: account, timeoutMs: 20000, currentQrDataUrl: link.qr });
        }
      } catch (e) {
        Object.assign(link, { qr: null, message: e.message, kind: "err" });
        render();
      } finally {
        busy = false;
      }
    }

    every(2000, render);
    return [h("h2", {}, "Channels"), box];
  },

  async devices(gen) {
    const box = h("div", {});
    async function render() {
      if (gen !== pageGen) return;
      let v;
      try { v = await gw.request("device.pair.list"); } catch (e) { box.replaceChildren(errorBox(e)); return; }
      const act = (method, params) => async () => {
        try { await gw.request(method, params); } catch (e) { box.prepend(errorBox(e)); return; }
        render();
      };
      const pending = (v.pending || []).map((r) => h("tr", { "data-request": r.requestId },
        h("td", {}, r.requestId), h("td", {}, `${r.clientId || ""} ${r.platform || ""}`), h("td", {}, r.role), h("td", {}, (r.scopes || []).join(", ")),
        h("td", {}, r.remoteAddr || "—"), h("td", {}, r.reason || ""),
        h("td", {}, h("button", { class: "primary", onclick: act("device.pair.approve", { requestId: r.requestId }) }, "Approve"), " ",
          h("button", { class: "danger", onclick: act("device.pair.reject", { requestId: r.requestId }) }, "Reject"))));
      const paired = (v.paired || []).map((d) => h("tr", {},
        h("td", {}, d.deviceId.slice(0, 16) + "…"), h("td", {}, `${d.clientId || ""} ${d.platform || ""}`), h("td", {}, (d.roles || []).join(", ")),
        h("td", {}, (d.scopes || []).join(", ")), h("td", {}, d.approvedVia || ""),
        h("td", {}, h("button", { class: "danger", onclick: act("device.pair.remove", { deviceId: d.deviceId }) }, "Revoke"))));
      box.replaceChildren(
        h("div", { class: "card" }, h("h3", {}, `Pending (${pending.length})`),
          pending.length ? h("table", {}, h("tr", {}, ["Request", "Client", "Role", "Scopes", "From", "Why", ""].map((t) => h("th", {}, t))), pending)
            : h("p", {}, "No device waits for approval. A client refused with “pairing required (1008)” shows up here.")),
        h("div", { class: "card" }, h("h3", {}, `Paired (${paired.length})`),
          h("table", {}, h("tr", {}, ["Device", "Client", "Roles", "Scopes", "Approved via", ""].map((t) => h("th", {}, t))), paired)));
    }
    const onEvent = (f) => { if (f.event.startsWith("device.pair.")) render(); };
    gw.listeners.add(onEvent);
    cleanup.push(() => gw.listeners.delete(onEvent));
    every(5000, render);
    return [h("h2", {}, "Devices"), box];
  },

  async runs() {
    // The run store (runs.list): hook, control and inbound DM runs, persisted across restarts.
    const [st, listed] = await Promise.all([gw.request("status"), gw.request("runs.list", { limit: 200 }).catch(() => null)]);
    if (listed && Array.isArray(listed.runs)) {
      const rows = listed.runs.map((r) => h("tr", { "data-run": r.runId },
        h("td", {}, fmtTime(r.createdAtMs)), h("td", {}, r.runId), h("td", {}, r.origin || ""),
        h("td", {}, (r.delivery && r.delivery.to) || ""), h("td", {}, r.model || ""),
        h("td", { class: r.state === "failed" ? "no" : (r.state === "done" || r.state === "delivered") ? "yes" : "" }, r.state), h("td", {}, r.error || "")));
      return [
        h("h2", {}, "Runs and messages"),
        h("div", { class: "card" }, kv([["Since start", `${st.runs.accepted} accepted, ${st.runs.done} done, ${st.runs.failed} failed`]])),
        h("div", { class: "card" }, rows.length
          ? h("table", {}, h("tr", {}, ["Started", "Run", "Origin", "Peer", "Model", "State", "Error"].map((t) => h("th", {}, t))), rows)
          : h("p", {}, "No runs yet. Hook calls (/hooks/agent), agent requests and answered DMs appear here.")),
      ];
    }
    const logs = await gw.request("logs.tail", { limit: 2000 });
    const runs = new Map();
    for (const line of logs.lines || []) {
      const m = line.match(/^(\d+) (\w+) \S+: (run \w+) (.*)$/);
      if (!m) continue;
      const fields = Object.fromEntries([...m[4].matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((x) => [x[1], x[2].replace(/^"|"$/g, "")]));
      if (!fields.runId) continue;
      const r = runs.get(fields.runId) || { id: fields.runId, at: Number(m[1]) };
      r.state = m[3].replace("run ", "");
      r.kind = fields.kind || r.kind;
      r.origin = fields.origin || r.origin;
      // `error=` is the last field and may contain spaces: take the rest of the line.
      const err = m[4].indexOf("error=");
      r.error = err >= 0 ? m[4].slice(err + 6) : r.error;
      r.updated = Number(m[1]);
      runs.set(fields.runId, r);
    }
    const rows = [...runs.values()].reverse().map((r) => h("tr", { "data-run": r.id },
      h("td", {}, fmtTime(r.at)), h("td", {}, r.id), h("td", {}, r.kind || ""), h("td", {}, r.origin || ""),
      h("td", { class: r.state === "failed" ? "no" : r.state === "done" ? "yes" : "" }, r.state), h("td", {}, r.error || "")));
    return [
      h("h2", {}, "Runs and messages"),
      h("div", { class: "card" }, kv([["Since start", `${st.runs.accepted} accepted, ${st.runs.done} done, ${st.runs.failed} failed`]])),
      h("div", { class: "card" }, rows.length
        ? h("table", {}, h("tr", {}, ["Started", "Run", "Kind", "Origin", "State", "Error"].map((t) => h("th", {}, t))), rows)
        : h("p", {}, "No runs in the recent log. Hook calls (/hooks/agent) and agent requests appear here.")),
    ];
  },

  async logs(gen) {
    const out = h("pre", { class: "logs", id: "logs" });
    const level = h("select", { id: "level" }, ["trace", "debug", "info", "warn", "error"].map((l) => h("option", { value: l, selected: l === "info" }, l)));
    const rank = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };
    let cursor;
    let lines = [];
    function draw() {
      const min = rank[level.value.toUpperCase()];
      const shown = lines.filter((l) => (rank[l.level] ?? 2) >= min).slice(-1000);
      out.replaceChildren(...shown.map((l) => h("div", { class: `lvl-${l.level}` }, `${fmtTime(l.ts)} ${l.level} ${l.rest}`)));
      out.scrollTop = out.scrollHeight;
    }
    level.addEventListener("change", draw);
    async function poll() {
      if (gen !== pageGen) return;
      try {
        const r = await gw.request("logs.tail", cursor === undefined ? { limit: 500 } : { limit: 2000, cursor });
        cursor = r.cursor;
        for (const raw of r.lines || []) {
          const m = raw.match(/^(\d+) (\w+) (.*)$/);
          lines.push(m ? { ts: Number(m[1]), level: m[2], rest: m[3] } : { ts: 0, level: "INFO", rest: raw });
        }
        if ((r.lines || []).length) draw();
      } catch (e) { /* shown by the connection pill */ }
    }
    every(1000, poll);
    return [h("h2", {}, "Logs"), h("div", { class: "actions" }, "Level at least ", level), out];
  },
};

let cleanup = [];

async function route() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "overview";
  const page = pages[name] ? name : "overview";
  clearInterval(pageTimer);
  for (const c of cleanup) c();
  cleanup = [];
  const gen = ++pageGen;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  if (!gw.hello) return;
  try {
    const content = await pages[page](gen);
    if (gen === pageGen) main.replaceChildren(...content);
  } catch (e) {
    if (gen === pageGen) main.replaceChildren(errorBox(e));
  }
}

// ---------- start ----------

// `openclaw dashboard` puts the token in the fragment (never sent to servers or logs); keep it
// in this browser and take it out of the address bar.
const m = location.hash.match(/[#&]token=([^&]+)/);
if (m) {
  localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", `${location.pathname}#/overview`);
}
$("#login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem(TOKEN_KEY, $("#login-token").value.trim());
  $("#login").hidden = true;
  main.hidden = false;
  connect();
});
window.addEventListener("hashchange", route);
connect();
