// The /ct/ page: shows the log and checks Merkle proofs in the browser with its own SHA3-256
// (WebCrypto has none). The hashing functions are also run by the ctlog tests under node.
"use strict";

const MASK = (1n << 64n) - 1n;
const RC = [0x1n, 0x8082n, 0x800000000000808an, 0x8000000080008000n, 0x808bn, 0x80000001n,
  0x8000000080008081n, 0x8000000000008009n, 0x8an, 0x88n, 0x80008009n, 0x8000000an, 0x8000808bn,
  0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n, 0x8000000000008002n,
  0x8000000000000080n, 0x800an, 0x800000008000000an, 0x8000000080008081n, 0x8000000000008080n,
  0x80000001n, 0x8000000080008008n];
// Rotation offsets r[x][y], indexed x + 5y (FIPS 202 table 2).
const ROT = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];

function rotl(v, n) { return n === 0 ? v : ((v << BigInt(n)) | (v >> BigInt(64 - n))) & MASK; }

function keccakF(s) {
  for (let round = 0; round < 24; round++) {
    const c = [0, 1, 2, 3, 4].map((x) => s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20]);
    for (let x = 0; x < 5; x++) {
      const d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
      for (let y = 0; y < 25; y += 5) s[y + x] ^= d;
    }
    const b = new Array(25);
    for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(s[x + 5 * y], ROT[x + 5 * y]);
    for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) s[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & MASK & b[(x + 2) % 5 + 5 * y]);
    s[0] ^= RC[round];
  }
}

/** SHA3-256 of a Uint8Array, as a Uint8Array(32). */
function sha3_256(bytes) {
  const rate = 136;
  const padded = new Uint8Array(Math.ceil((bytes.length + 1) / rate) * rate);
  padded.set(bytes);
  padded[bytes.length] ^= 0x06;
  padded[padded.length - 1] ^= 0x80;
  const s = new Array(25).fill(0n);
  for (let off = 0; off < padded.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) {
      let lane = 0n;
      for (let k = 7; k >= 0; k--) lane = (lane << 8n) | BigInt(padded[off + 8 * i + k]);
      s[i] ^= lane;
    }
    keccakF(s);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((s[i >> 3] >> BigInt(8 * (i & 7))) & 0xffn);
  return out;
}

function fromHex(h) { return Uint8Array.from(h.match(/../g) || [], (b) => parseInt(b, 16)); }
function toHex(b) { return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); }
function node(l, r) { const m = new Uint8Array(65); m[0] = 1; m.set(l, 1); m.set(r, 33); return sha3_256(m); }

/** RFC 9162 §2.1.3.2: root from an inclusion proof, or null if the proof has the wrong shape. */
function rootFromInclusion(index, size, leafHash, proof) {
  if (index >= size) return null;
  let fn = index, sn = size - 1, r = leafHash;
  for (const p of proof) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = node(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else r = node(r, p);
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

/** RFC 9162 §2.1.4.2: whether `proof` shows the tree (size1, root1) is a prefix of (size2, root2). */
function verifyConsistency(size1, size2, proof, root1, root2) {
  if (size1 === size2) return proof.length === 0 && toHex(root1) === toHex(root2);
  if (size1 === 0 || size1 > size2 || proof.length === 0) return false;
  let path = proof.slice();
  if ((size1 & (size1 - 1)) === 0) path.unshift(root1);
  let fn = size1 - 1, sn = size2 - 1;
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = node(c, fr); sr = node(c, sr);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else sr = node(sr, c);
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && toHex(fr) === toHex(root1) && toHex(sr) === toHex(root2);
}

if (typeof module !== "undefined") module.exports = { sha3_256, toHex, fromHex, rootFromInclusion, verifyConsistency };

if (typeof document !== "undefined") {
  let shown = null; // {size, root} of the tree on screen
  const $ = (id) => document.getElementById(id);
  const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };

  async function getJson(url) { const r = await fetch(url); if (!r.ok) throw new Error(url + " → " + r.status); return r.json(); }

  async function verifyEntry(index, out) {
    out.textContent = "…";
    try {
      const p = await getJson("/v2/ct/proof?index=" + index);
      const root = rootFromInclusion(p.leaf_index, p.tree_size, fromHex(p.leaf_hash), p.audit_path.map((s) => fromHex(s.hash)));
      const ok = root !== null && toHex(root) === p.root && p.sth && p.sth.sha3_root === p.root;
      out.textContent = ok ? "included ✓" : "PROOF FAILS";
      out.className = ok ? "ok" : "bad";
    } catch (e) { out.textContent = String(e); out.className = "bad"; }
  }

  async function checkGrowth(feed) {
    if (!shown || shown.size === 0 || shown.size === feed.tree_size && shown.root === feed.root) return;
    const el = $("consistency");
    try {
      const c = await getJson("/v2/sth/consistency?from=" + shown.size + "&to=" + feed.tree_size);
      const ok = verifyConsistency(shown.size, feed.tree_size, c.proof.map(fromHex), fromHex(shown.root), fromHex(feed.root));
      el.textContent = ok ? "Tree " + shown.size + " → " + feed.tree_size + ": consistent ✓"
        : "Tree " + shown.size + " → " + feed.tree_size + ": NOT CONSISTENT — the log rewrote history.";
      el.className = ok ? "ok" : "bad";
    } catch (e) { el.textContent = String(e); el.className = "bad"; }
  }

  async function refresh() {
    try {
      const feed = await getJson("/ct/feed");
      await checkGrowth(feed);
      shown = { size: feed.tree_size, root: feed.root };
      $("relay").textContent = "— " + feed.relay_id;
      $("size").textContent = feed.tree_size;
      $("root").textContent = feed.root;
      $("signed").textContent = new Date(feed.sth.timestamp).toISOString();
      $("pk").textContent = feed.pk_hash;
      const rows = feed.recent_entries.slice().reverse().map((e) => {
        const tr = document.createElement("tr");
        const out = cell("");
        const btn = document.createElement("button");
        btn.textContent = "verify";
        btn.onclick = () => verifyEntry(e.index, out);
        const act = document.createElement("td"); act.append(btn, " ", out);
        tr.append(cell(e.index), cell(e.type), cell(e.timestamp), cell(e.leaf_hash, "h"), act);
        return tr;
      });
      $("entries").replaceChildren(...rows);
      $("sths").replaceChildren(...feed.recent_sths.map((s) => {
        const tr = document.createElement("tr");
        tr.append(cell(s.tree_size), cell(new Date(s.timestamp).toISOString()), cell(s.sha3_root, "h"));
        return tr;
      }));
      $("status").textContent = "Live — refreshes every 10 s.";
    } catch (e) { $("status").textContent = "Cannot load the feed: " + e; }
  }
  refresh();
  setInterval(refresh, 10000);
}
