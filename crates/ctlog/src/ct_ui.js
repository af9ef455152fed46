// The /ct/ page: shows the log and verifies it in the browser. Signatures (ML-DSA-65) and
// SHA3-256 come from the bundled, audited @noble code (/ct/noble.js, global `nobleCt`); the
// Merkle proof checks below are RFC 9162. The pure functions are also run by the ctlog tests
// under node (tests/ui_js.rs).
"use strict";

function noble() {
  if (typeof nobleCt === "undefined") throw new Error("the bundled verifier (/ct/noble.js) did not load");
  return nobleCt; // eslint-disable-line no-undef
}

/** SHA3-256 of a Uint8Array, as a Uint8Array(32). */
function sha3_256(bytes) { return noble().sha3_256(bytes); }
function fromHex(h) {
  if (typeof h !== "string" || !/^([0-9a-f]{2})*$/.test(h)) throw new Error("not lowercase hex");
  return Uint8Array.from(h.match(/../g) || [], (b) => parseInt(b, 16));
}
function toHex(b) { return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); }
function fromB64(s) { const bin = atob(s); return Uint8Array.from(bin, (c) => c.charCodeAt(0)); }
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

/** The bytes an STH signature covers: canonical JSON of its five fields (keys sorted). */
function sthSignedBytes(sth) {
  for (const n of ["timestamp", "tree_size", "version"]) if (!Number.isSafeInteger(sth[n]) || sth[n] < 0) throw new Error(n + " is not an exact integer");
  const body = { relay_id: sth.relay_id, sha3_root: sth.sha3_root, timestamp: sth.timestamp, tree_size: sth.tree_size, version: sth.version };
  return new TextEncoder().encode(JSON.stringify(body));
}

/**
 * Whether `sth` is signed by `publicKey` (Uint8Array, the 1952-byte ML-DSA-65 key) and names
 * that key's fingerprint. Pure ML-DSA-65, empty context, as the log signs.
 */
function verifySth(sth, publicKey) {
  try {
    if (sth.version !== 1 || !/^[0-9a-f]{64}$/.test(sth.sha3_root)) return false;
    if (sth.pk_hash !== toHex(sha3_256(publicKey))) return false;
    return noble().ml_dsa65.verify(fromB64(sth.signature), sthSignedBytes(sth), publicKey);
  } catch (e) { return false; }
}

if (typeof module !== "undefined") module.exports = { sha3_256, toHex, fromHex, fromB64, rootFromInclusion, verifyConsistency, verifySth, sthSignedBytes };

if (typeof document !== "undefined") {
  const PIN = "paramant-ct:pinned-key";       // fingerprint pinned on first use
  const LAST = "paramant-ct:last-verified";   // {tree_size, sha3_root} of the last verified head
  const $ = (id) => document.getElementById(id);
  const cell = (text, cls) => { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; };
  const verdict = (el, state, text) => { el.dataset.state = state; el.textContent = text; };
  let key = null;     // {bytes, hash} of the log key, once it matches the pin
  let signed = null;  // the newest STH whose signature verified

  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(url + " → HTTP " + r.status);
    return r.json();
  }
  function store(name, value) { try { localStorage.setItem(name, value); } catch (e) { /* private mode: memory only */ } }
  function load(name) { try { return localStorage.getItem(name); } catch (e) { return null; } }

  /** Fetches the log key, checks its fingerprint, and compares it with the pin. */
  async function loadKey() {
    const k = await getJson("/v2/pubkey");
    const bytes = fromB64(k.public_key);
    const hash = toHex(sha3_256(bytes));
    if (hash !== k.pk_hash) throw new Error("the key's fingerprint does not match the key");
    $("pk").textContent = hash;
    const pinned = load(PIN);
    if (pinned === null) { store(PIN, hash); $("pin-state").textContent = "(pinned in this browser now; compare it with the operator's published fingerprint)"; }
    else if (pinned !== hash) {
      $("pinned-old").textContent = pinned; $("pinned-new").textContent = hash; $("keywarn").hidden = false;
      $("repin").onclick = () => { store(PIN, hash); store(LAST, "null"); location.reload(); };
      return null;
    } else $("pin-state").textContent = "(matches the key pinned in this browser)";
    return { bytes, hash };
  }

  async function checkConsistency(sth) {
    const el = $("consistency");
    let last = null;
    try { last = JSON.parse(load(LAST) || "null"); } catch (e) { last = null; }
    if (!last || last.tree_size === 0) { verdict(el, "none", "nothing to compare yet (first verified head in this browser)"); return true; }
    if (last.tree_size > sth.tree_size) { fork("The log shows a tree of " + sth.tree_size + " after this browser verified " + last.tree_size + ": it shrank."); return false; }
    let ok;
    if (last.tree_size === sth.tree_size) ok = last.sha3_root === sth.sha3_root;
    else {
      const c = await getJson("/v2/sth/consistency?from=" + last.tree_size + "&to=" + sth.tree_size);
      ok = verifyConsistency(last.tree_size, sth.tree_size, c.proof.map(fromHex), fromHex(last.sha3_root), fromHex(sth.sha3_root));
    }
    if (!ok) { fork("Tree " + last.tree_size + " → " + sth.tree_size + ": NOT CONSISTENT — the log rewrote history this browser saw."); return false; }
    verdict(el, "valid", "Tree " + last.tree_size + " → " + sth.tree_size + ": consistent ✓ (proof checked here)");
    return true;
  }
  function fork(text) { verdict($("consistency"), "invalid", text); $("forkwarn").textContent = text; $("forkwarn").hidden = false; }

  async function verifyEntry(index, out) {
    verdict(out, "pending", "…");
    try {
      if (!signed) throw new Error("no verified tree head");
      const p = await getJson("/v2/ct/proof?index=" + index + "&tree_size=" + signed.tree_size);
      const root = rootFromInclusion(index, signed.tree_size, fromHex(p.leaf_hash), p.audit_path.map((s) => fromHex(s.hash)));
      const ok = p.leaf_index === index && root !== null && toHex(root) === signed.sha3_root;
      verdict(out, ok ? "valid" : "invalid", ok ? "included ✓ in signed tree " + signed.tree_size : "PROOF FAILS against the signed root");
    } catch (e) { verdict(out, "invalid", "PROOF FAILS: " + e.message); }
  }

  function drawChart(sths) {
    const pts = sths.slice().sort((a, b) => a.timestamp - b.timestamp);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 1000 100");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    if (pts.length > 0) {
      const t0 = pts[0].timestamp, t1 = pts[pts.length - 1].timestamp, max = Math.max(1, ...pts.map((s) => s.tree_size));
      const x = (t) => (t1 === t0 ? 500 : ((t - t0) / (t1 - t0)) * 1000), y = (n) => 95 - (n / max) * 90;
      const line = document.createElementNS(svg.namespaceURI, "polyline");
      line.setAttribute("points", pts.map((s) => x(s.timestamp).toFixed(1) + "," + y(s.tree_size).toFixed(1)).join(" "));
      svg.append(line);
      const title = document.createElementNS(svg.namespaceURI, "title");
      title.textContent = "tree size " + pts[0].tree_size + " → " + pts[pts.length - 1].tree_size + ", " + new Date(t0).toISOString() + " → " + new Date(t1).toISOString();
      svg.append(title);
    }
    const caption = document.createElement("small");
    caption.textContent = pts.length ? "Last " + pts.length + " signed heads: size " + pts[0].tree_size + " (" + new Date(pts[0].timestamp).toISOString() + ") → " + pts[pts.length - 1].tree_size + " (" + new Date(pts[pts.length - 1].timestamp).toISOString() + ")" : "no heads yet";
    $("chart").replaceChildren(svg, caption);
  }

  function showEntries(entries) {
    $("entries").replaceChildren(...entries.slice().reverse().map((e) => {
      const tr = document.createElement("tr");
      const out = cell(""); out.className = "proof";
      const btn = document.createElement("button");
      btn.type = "button"; btn.textContent = "verify"; btn.dataset.index = e.index;
      btn.onclick = () => verifyEntry(e.index, out);
      const act = document.createElement("td"); act.append(btn, " ", out);
      tr.append(cell(e.index), cell(e.type || ""), cell(e.timestamp || ""), cell(e.leaf_hash, "h"), act);
      return tr;
    }));
  }

  async function showHistory() {
    const h = await getJson("/v2/sth/history?limit=100");
    drawChart(h.sths);
    $("sths").replaceChildren(...h.sths.slice(0, 20).map((s) => {
      const tr = document.createElement("tr");
      const ok = key !== null && verifySth(s, key.bytes);
      const sig = cell(ok ? "valid ✓" : "INVALID"); sig.dataset.state = ok ? "valid" : "invalid";
      tr.append(cell(s.tree_size), cell(new Date(s.timestamp).toISOString()), cell(s.sha3_root, "h"), sig);
      return tr;
    }));
  }

  async function showPeers() {
    const p = await getJson("/v2/sth/peers");
    $("peers").replaceChildren(...p.peers.map((r) => {
      const tr = document.createElement("tr");
      let keyOk = false;
      try { keyOk = toHex(sha3_256(fromB64(r.public_key))) === r.relay_pk_hash; } catch (e) { keyOk = false; }
      tr.append(cell(r.relay_id), cell(r.relay_pk_hash + (keyOk ? "" : " (does not match its key!)"), "h"), cell(r.sth_count), cell(r.latest_tree_size), cell(r.consistency), cell(r.forks));
      return tr;
    }));
  }

  async function refresh() {
    const status = $("status");
    verdict(status, "pending", "Checking…");
    try {
      if (key === null) key = await loadKey();
      const feed = await getJson("/ct/feed");
      const sth = feed.sth;
      $("relay").textContent = "— " + feed.relay_id;
      $("size").textContent = sth.tree_size;
      $("root").textContent = sth.sha3_root;
      $("signed").textContent = new Date(sth.timestamp).toISOString();
      showEntries(feed.recent_entries);
      await Promise.all([showHistory(), showPeers()]);
      if (key === null) { verdict($("sth-state"), "invalid", "NOT TRUSTED: signed by a key this browser did not pin"); verdict(status, "invalid", "INVALID — the log's key changed (see the warning)."); return; }
      if (!verifySth(sth, key.bytes)) { verdict($("sth-state"), "invalid", "SIGNATURE INVALID for the pinned key"); verdict(status, "invalid", "INVALID — the tree head's signature does not verify."); signed = null; return; }
      verdict($("sth-state"), "valid", "signature valid ✓ (ML-DSA-65, pinned key, checked here)");
      if (!(await checkConsistency(sth))) { verdict(status, "invalid", "INVALID — the log is not consistent with what this browser verified before."); return; }
      signed = sth;
      store(LAST, JSON.stringify({ tree_size: sth.tree_size, sha3_root: sth.sha3_root }));
      verdict(status, "valid", "Verified ✓ — tree " + sth.tree_size + " is signed by the pinned key and consistent with earlier heads.");
    } catch (e) { verdict(status, "invalid", "Cannot verify: " + e.message); }
  }
  $("refresh").onclick = refresh;
  refresh();
  setInterval(refresh, 30000);
}
