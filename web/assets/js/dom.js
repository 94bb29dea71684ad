// DOM helpers. Pages build elements with h() and never assign innerHTML, so
// text from the server (tickers, IBKR messages, e-mail addresses) can never
// become markup.

/**
 * h creates an element. attrs: plain attributes; `class`; `on<event>`
 * listeners; `value`/`checked`/`selected` set as properties; true sets an
 * empty attribute, false/null/undefined leaves it out. Children may be
 * nodes, strings, numbers, arrays or null.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const props = {};
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'value' || k === 'checked' || k === 'selected') {
      props[k] = v;
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  Object.assign(el, props);
  return el;
}

/** append adds children (nodes, text, nested arrays; nulls skipped). */
export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** replace empties el and fills it with children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let idCounter = 0;
/** uid returns an element id unique within the page. */
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** announce tells screen-reader users about a change that is not focused. */
export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  // A new text node in a separate task is announced even when repeated.
  setTimeout(() => { el.textContent = text; }, 50);
}

const statusLabels = {
  pending: 'Pending',
  submitted: 'Submitted',
  filled: 'Filled',
  partially_filled: 'Partially filled',
  cancelled: 'Cancelled',
  cancelling: 'Cancelling…',
  failed: 'Failed',
  unknown: 'Checking with IBKR',
  connected: 'Connected',
  untested: 'Untested',
  pending_activation: 'Pending activation',
};

const statusTones = {
  pending: 'info',
  submitted: 'info',
  unknown: 'warn',
  filled: 'ok',
  partially_filled: 'warn',
  cancelled: 'muted',
  cancelling: 'warn',
  failed: 'bad',
  connected: 'ok',
  untested: 'muted',
  pending_activation: 'warn',
};

/** statusLabel names a confirmation or connection status in words. */
export function statusLabel(status) {
  return statusLabels[status] || status || '—';
}

/** badge is a coloured status pill; the colour never carries meaning alone. */
export function badge(status, text) {
  return h('span', { class: `badge badge-${statusTones[status] || 'muted'}`, 'data-status': status },
    text || statusLabel(status));
}

/** pendingStatus reports whether a confirmation may still change by itself. */
export function pendingStatus(status) {
  return status === 'pending' || status === 'submitted' || status === 'unknown' || status === 'partially_filled';
}

const entryModes = {
  next_open_market: 'Market on open',
  next_open_limit: 'Limit on open',
  signal_close: 'Market on close',
};

/** orderWords names IBKR's order type and time in force in plain English
 * ("MKT", "OPG" → "Market at the open"), with the codes as a fallback. */
export function orderWords(orderType, tif) {
  if (orderType === 'MOC') return 'Market on close';
  const names = { MKT: 'Market', LMT: 'Limit' };
  const tifs = { OPG: 'at the open', DAY: 'today' };
  if (!names[orderType]) return [orderType, tif].filter(Boolean).join(' ') || '—';
  return [names[orderType], tifs[tif] || tif].filter(Boolean).join(' ');
}

const brokerStatuses = {
  PendingSubmit: 'Being sent',
  PreSubmitted: 'Waiting for the auction',
  Submitted: 'Working',
  PendingCancel: 'Cancel requested',
  ApiCancelled: 'Cancelled',
  Cancelled: 'Cancelled',
  Filled: 'Filled',
  Inactive: 'Inactive',
};

/** brokerStatusLabel words IBKR's own order status ("PreSubmitted"). */
export function brokerStatusLabel(s) {
  if (!s) return '—';
  return brokerStatuses[s] ? `${brokerStatuses[s]} (${s})` : s;
}

/** entryModeLabel names an entry mode in words. */
export function entryModeLabel(mode) {
  return entryModes[mode] || mode || '—';
}

// One formatter for every amount of money the UI shows. It is given the
// decimal string itself (Intl.NumberFormat formats strings exactly), so no
// float rounding creeps in; cents always show, finer prices keep their digits.
const moneyFormat = new Intl.NumberFormat('en-US', {
  style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 6,
});

/** money shows a decimal string as dollars: "2434.25" → "$2,434.25". */
export function money(v) {
  if (v == null || v === '') return '—';
  const s = String(v).trim();
  if (!/^[+-]?\d+(\.\d+)?$/.test(s)) return s;
  return moneyFormat.format(s).replace('-', '−');
}

/**
 * decimalTimes multiplies a decimal string by a whole number exactly and
 * returns the product as a decimal string with two decimals, rounded half
 * up ("187.25" × 26 → "4868.50").
 */
export function decimalTimes(v, n) {
  const s = String(v || '').trim();
  if (!/^\d+(\.\d+)?$/.test(s) || !/^\d+$/.test(String(n))) return '';
  const [i, f = ''] = s.split('.');
  const scale = Math.max(f.length, 2);
  const units = BigInt(i + f.padEnd(scale, '0')) * BigInt(n);
  const div = 10n ** BigInt(scale - 2);
  const cents = (units + div / 2n) / div;
  const c = cents.toString().padStart(3, '0');
  return `${c.slice(0, -2)}.${c.slice(-2)}`;
}

/**
 * fractionPercent shows a decimal fraction ("-0.031") as a percentage
 * ("−3.1 %") by moving the decimal point in the string, so no float
 * rounding creeps in.
 */
export function fractionPercent(v) {
  if (v == null || v === '') return '—';
  let s = String(v).trim();
  if (!/^[+-]?\d+(\.\d+)?$/.test(s)) return s;
  const neg = s.startsWith('-');
  if (neg || s.startsWith('+')) s = s.slice(1);
  const [i, f = ''] = s.split('.');
  const g = f.padEnd(2, '0');
  const int = (i + g.slice(0, 2)).replace(/^0+(?=\d)/, '');
  const frac = g.slice(2).replace(/0+$/, '');
  const out = int + (frac ? `.${frac}` : '');
  return `${neg && /[1-9]/.test(out) ? '−' : ''}${out} %`;
}

/** percentToFraction turns "−3.1" (percent, as typed) into "-0.031". */
export function percentToFraction(v) {
  let s = String(v || '').trim().replace(/%$/, '').trim().replace('−', '-');
  if (!/^[+-]?\d+(\.\d+)?$/.test(s)) return s;
  const neg = s.startsWith('-');
  if (neg || s.startsWith('+')) s = s.slice(1);
  const [i, f = ''] = s.split('.');
  const padded = i.padStart(3, '0');
  const int = padded.slice(0, -2).replace(/^0+(?=\d)/, '');
  const frac = (padded.slice(-2) + f).replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/** sentence capitalizes a server message's first letter for display. */
export function sentence(s) {
  const t = String(s || '');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** plain shows a value or a dash. */
export function plain(v) {
  return v == null || v === '' ? '—' : String(v);
}

/** EXCHANGE_TZ is the exchange's time zone: every time the UI shows is in it. */
export const EXCHANGE_TZ = 'America/New_York';

// The one formatter of times: parts in the exchange's zone, the zone's
// short name (EST or EDT) always shown, so no time on a page is ambiguous.
const exchangeParts = new Intl.DateTimeFormat('en-US', {
  timeZone: EXCHANGE_TZ, hourCycle: 'h23', weekday: 'short',
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});
const localFormat = new Intl.DateTimeFormat('en-US', {
  dateStyle: 'medium', timeStyle: 'long',
});

/**
 * exchangeTime formats a Date in the exchange's time zone:
 * "2026-12-02 09:28:00 EST"; seconds: false drops the seconds, weekday
 * puts the day's name first ("Wed 09:28 EST" when date is false too), and
 * date: false (or a YYYY-MM-DD equal to the exchange's date) leaves the
 * date out. It also returns the exchange's date (YYYY-MM-DD).
 */
export function exchangeTime(d, { seconds = true, weekday = false, date = true } = {}) {
  const p = Object.fromEntries(exchangeParts.formatToParts(d).map((x) => [x.type, x.value]));
  const day = `${p.year}-${p.month}-${p.day}`;
  const showDate = date === true || (typeof date === 'string' && date !== day);
  const clock = `${p.hour}:${p.minute}${seconds ? `:${p.second}` : ''} ${p.timeZoneName}`;
  const text = [weekday ? p.weekday : null, showDate ? day : null, clock].filter(Boolean).join(' ');
  return { text, day };
}

/** localTime words a Date in the reader's own time zone, for the hover. */
export function localTime(d) {
  return `Your time: ${localFormat.format(d)}`;
}

/**
 * dateTime renders an RFC 3339 time as a <time> in the exchange's time zone
 * (New York), with the reader's local time on hover; opts as exchangeTime.
 */
export function dateTime(iso, opts) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return h('time', { datetime: d.toISOString(), title: localTime(d) }, exchangeTime(d, opts).text);
}

/** newIdempotencyKey returns a random UUID v4, also outside secure contexts. */
export function newIdempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** table builds an accessible data table; cells carry their header as
 * data-label so narrow screens can show each row as a card. */
export function table({ caption, columns, rows, empty, className, hideCaption }) {
  const head = h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.className }, c.label))));
  const body = h('tbody');
  for (const row of rows) {
    const tr = h('tr', row.attrs || null);
    for (const c of columns) {
      const cell = c.cell(row.data);
      tr.append(h(c.header ? 'th' : 'td', { 'data-label': c.label, class: c.className, scope: c.header ? 'row' : null }, cell));
    }
    body.append(tr);
  }
  if (rows.length === 0) {
    body.append(h('tr', { class: 'empty-row' }, h('td', { colspan: columns.length }, empty || 'Nothing here yet.')));
  }
  // A region that may scroll sideways must be reachable by keyboard.
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption || 'Table' },
    h('table', { class: `data-table ${className || ''}` }, caption ? h('caption', { class: hideCaption ? 'sr-only' : null }, caption) : null, head, body));
}

/** adviceLine is one line of what to do about IBKR's refusal of an order
 * (a confirmation's error.advice, or a what-if's refusal_advice), or null. */
export function adviceLine(advice) {
  if (!advice) return null;
  return h('p', { class: 'advice', 'data-advice': '' }, h('strong', null, 'What to do: '), advice);
}
