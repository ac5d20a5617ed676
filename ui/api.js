// The API client: every request carries the token from this tab's sessionStorage (never a
// URL), and errors come back as the server's problem+json.

const KEY = 'scanledger.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t.trim());
  else sessionStorage.removeItem(KEY);
}

/** A refused request: `status`, and the problem's `code`, `detail`, `correlation_id`. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

/** Called when the API answers 401: the console asks for a token. */
let onUnauthorized = () => {};
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

function headers(extra) {
  const h = new Headers(extra || {});
  const t = token();
  if (t) h.set('Authorization', `Bearer ${t}`);
  return h;
}

/** fetch() with the token; throws ApiError on a status other than 2xx/304. */
export async function request(path, { method = 'GET', body, extraHeaders, signal } = {}) {
  const init = { method, headers: headers(extraHeaders), signal, cache: 'no-store' };
  if (body !== undefined) {
    init.headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) onUnauthorized();
  if (!resp.ok && resp.status !== 304) {
    let problem = null;
    try { problem = await resp.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(resp.status, problem);
  }
  return resp;
}

export async function getJson(path, opts) {
  return (await request(path, opts)).json();
}

/** Download a response as a file (the token travels in a header, so no plain link). */
export async function download(path, fallbackName) {
  const resp = await request(path);
  const cd = resp.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = m ? m[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A fresh Idempotency-Key. */
export function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
