// The one place that talks to the server. Every call goes to the JSON API
// (/api/v1); errors arrive as RFC 9457 problem details and become ApiError.

/** ApiError is a failed API call, carrying the problem document's fields. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `Request failed (${status})`);
    this.status = status;
    this.code = (problem && problem.code) || '';
    this.detail = (problem && problem.detail) || '';
    this.errors = (problem && Array.isArray(problem.errors)) ? problem.errors : [];
    this.requestId = (problem && problem.request_id) || '';
    // A confirm IBKR refused carries the failed confirmation (with advice).
    this.confirmation = (problem && problem.confirmation) || null;
  }
}

const listeners = new Set();

/** onAuthLost registers fn(code) to run when the server says the session
 * is gone (unauthenticated) or needs its second factor (mfa_required). */
export function onAuthLost(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

let stepUpHandler = null;
let stepUpPending = null;

/** onStepUp sets fn() as the way to get a fresh second factor when the
 * server answers step_up_required: it resolves true once POST
 * /auth/step-up succeeded, false when the user gave up. The refused call
 * is then sent again, once. */
export function onStepUp(fn) {
  stepUpHandler = fn;
}

/** stepUp asks for the second factor once for any number of calls
 * refused at the same time. */
function stepUp() {
  if (!stepUpPending) {
    stepUpPending = Promise.resolve(stepUpHandler()).finally(() => { stepUpPending = null; });
  }
  return stepUpPending;
}

/**
 * api calls the JSON API. path is relative to /api/v1. A body is sent as
 * JSON. It resolves with the parsed JSON (null for 204) and the status, and
 * rejects with ApiError. A step_up_required answer is handled here, in one
 * place: see onStepUp (opts.noStepUp turns that off).
 */
export async function call(method, path, body, opts = {}) {
  try {
    return await request(method, path, body, opts);
  } catch (err) {
    // A sensitive action needs a fresh code: ask for it, then send the
    // same request again (its Idempotency-Key, if any, travels with it).
    if (err.code !== 'step_up_required' || !stepUpHandler || opts.noStepUp) throw err;
    if (!(await stepUp())) throw err;
    return request(method, path, body, { ...opts, noStepUp: true });
  }
}

async function request(method, path, body, { headers, quietAuth } = {}) {
  const init = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...(headers || {}) },
  };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, { detail: 'The server could not be reached. Check your connection and try again.', code: 'network' });
  }
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (res.status !== 204 && (type.includes('json'))) {
    try { data = await res.json(); } catch { data = null; }
  } else {
    // Read (and drop) any other body: an unread one is cancelled, which
    // Chromium logs as net::ERR_ABORTED.
    try { await res.arrayBuffer(); } catch { /* nothing to read */ }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (!quietAuth && (err.code === 'unauthenticated' || err.code === 'mfa_required')) {
      for (const fn of listeners) fn(err.code);
    }
    throw err;
  }
  return { status: res.status, data };
}

/** get is call('GET', …) returning only the data. */
export async function get(path, opts) {
  return (await call('GET', path, undefined, opts)).data;
}

/** send is call(method, …) returning only the data. */
export async function send(method, path, body, opts) {
  return (await call(method, path, body, opts)).data;
}

/** query builds a query string from the non-empty entries of params. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v != null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
