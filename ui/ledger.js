// Checks one scan's proof bundle (GET /api/scans/{id}/proof) in the browser, with the
// rules of docs/audit.md: each event's hash recomputed from its stored fields, the chain
// of prev_hash links, each Completed's findings digest recomputed from its findings, and
// each checkpointed event's inclusion proof against its checkpoint's Merkle root
// (RFC 9162). Signatures are not checked here: `scanledger audit verify --bundle
// FILE --public-key KEY` does that offline. SHA-256 is computed here (FIPS 180-4), so the
// check works on plain-HTTP deployments too, where WebCrypto is unavailable.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 of bytes → 32 bytes. */
export function sha256(bytes) {
  const len = bytes.length;
  const padded = new Uint8Array(((len + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[len] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(len / 0x20000000));
  view.setUint32(padded.length - 4, (len << 3) >>> 0);
  const H = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const W = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(W[i - 15], 7) ^ rotr(W[i - 15], 18) ^ (W[i - 15] >>> 3);
      const s1 = rotr(W[i - 2], 17) ^ rotr(W[i - 2], 19) ^ (W[i - 2] >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = H;
    for (let i = 0; i < 64; i++) {
      const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + W[i]) >>> 0;
      const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    H[0] += a; H[1] += b; H[2] += c; H[3] += d; H[4] += e; H[5] += f; H[6] += g; H[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, H[i]);
  return out;
}

const utf8 = new TextEncoder();

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function unhex(s) {
  if (typeof s !== 'string' || s.length % 2) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const v = parseInt(s.slice(i * 2, i * 2 + 2), 16);
    if (Number.isNaN(v)) return null;
    out[i] = v;
  }
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** The canonical encoding: `S<octets>:<text>\n` per field, `N\n` for NULL. */
function fields(values) {
  return concat(values.map((v) => {
    if (v === null || v === undefined) return utf8.encode('N\n');
    const bytes = utf8.encode(String(v));
    return concat([utf8.encode(`S${bytes.length}:`), bytes, utf8.encode('\n')]);
  }));
}

export function eventHash(e) {
  return hex(sha256(fields(['scanledger-event-v1', e.scan_id, e.version, e.kind, e.attempt,
    e.worker_id, e.payload, e.recorded_at, e.prev_hash, e.findings_digest])));
}

export function findingHash(f) {
  return sha256(fields(['scanledger-finding-v1', f.fingerprint, f.rule_id, f.rule_name, f.severity,
    f.category, f.resource_id, f.resource_name, f.resource_type, f.description, f.remediation,
    f.frameworks, f.details, f.detected_at]));
}

function bytesLess(a, b) {
  const x = utf8.encode(a); const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** RFC 9162 §2.1.3.2. */
export function verifyInclusion(leaf, index, size, path, root) {
  if (index >= size) return false;
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = sha256(concat([Uint8Array.of(1), p, r]));
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = sha256(concat([Uint8Array.of(1), r, p]));
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && hex(r) === hex(root);
}

/**
 * Check a bundle's text. Returns, per event version: { hash: bool, chain: bool,
 * findings: bool|null, checkpoint: {id, signed, key_id}|null, proof: bool|null, problems: [..] }.
 */
export function verifyBundle(text) {
  const lines = text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const header = lines.find((l) => l.type === 'header');
  if (!header || header.format !== 'scanledger-audit-bundle-v1') throw new Error('not a scanledger audit bundle');
  const events = lines.filter((l) => l.type === 'event').sort((a, b) => a.version - b.version);
  const checkpoints = new Map(lines.filter((l) => l.type === 'checkpoint').map((c) => [c.checkpoint_id, c]));
  const proofs = new Map(lines.filter((l) => l.type === 'proof').map((p) => [p.seq, p]));
  const byAttempt = new Map();
  for (const f of lines.filter((l) => l.type === 'finding')) {
    const k = `${f.scan_id}/${f.attempt}`;
    if (!byAttempt.has(k)) byAttempt.set(k, []);
    byAttempt.get(k).push(f);
  }
  const result = new Map();
  let prev = null;
  for (const e of events) {
    const r = { hash: eventHash(e) === e.hash, chain: true, findings: null, checkpoint: null, proof: null, payload: e.payload, hashHex: e.hash };
    r.chain = e.version === 1 ? e.prev_hash === null : (prev !== null && prev.version === e.version - 1 && e.prev_hash === prev.hash);
    if (e.kind === 'Completed') {
      const fs = (byAttempt.get(`${e.scan_id}/${e.attempt}`) || []).sort((a, b) => bytesLess(a.fingerprint, b.fingerprint));
      r.findings = hex(sha256(concat(fs.map(findingHash)))) === e.findings_digest;
      r.findingCount = fs.length;
    }
    const p = proofs.get(e.seq);
    if (p) {
      const c = checkpoints.get(p.checkpoint_id);
      const path = p.path.map(unhex);
      r.checkpoint = c ? { id: c.checkpoint_id, signed: !!c.signature, key_id: c.key_id } : { id: p.checkpoint_id };
      r.proof = !!c && p.tree_size === c.events && path.every(Boolean)
        && verifyInclusion(sha256(concat([Uint8Array.of(0), unhex(e.hash)])), p.leaf_index, p.tree_size, path, unhex(c.root));
    }
    result.set(e.version, r);
    prev = e;
  }
  return result;
}
