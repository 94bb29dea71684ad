// Positions: the open positions of the active account as IBKR holds them
// now (GET /positions, which the server caches for seconds), each with the
// exit confirmed for it. The Portfolio page shows every column and the
// dashboard a compact panel; both go through positionsView, so the two
// pages say the same thing in the same states: loading, no broker
// connection, IBKR could not be asked (with a Retry), no positions.
import {
  h, replace, money, plain, table, badge, sentence,
} from './dom.js';
import { get } from './api.js';

/** cents reads a decimal string as whole cents, exactly. */
export function cents(v) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(v || '0').trim());
  if (!m) return 0;
  const frac = `${m[3] || ''}00`.slice(0, 2);
  const n = Number(m[2]) * 100 + Number(frac);
  return m[1] ? -n : n;
}

/** fromCents writes whole cents as a decimal string ("-1234" → "-12.34"). */
export function fromCents(n) {
  const sign = n < 0 ? '-' : '';
  const a = Math.abs(n);
  return `${sign}${Math.floor(a / 100)}.${String(a % 100).padStart(2, '0')}`;
}

/** signed shows an amount with its sign (+ or −), coloured by it: the sign
 * says it without the colour. */
export function signed(v) {
  const n = cents(v);
  return h('span', { class: n > 0 ? 'pnl-up' : n < 0 ? 'pnl-down' : null }, n > 0 ? `+${money(v)}` : money(v));
}

/** exitMark links a position's confirmed exit, or is a dash. */
function exitMark(p) {
  if (!p.exit) return '—';
  return h('a', { href: `/confirmations/${encodeURIComponent(p.exit.confirmation_id)}`, 'data-exit': '' },
    badge(p.exit.status, `Exit confirmed · ${p.exit.quantity}`));
}

// The columns of the Portfolio page; compact ones are the dashboard's.
const columns = [
  { label: 'Ticker', header: true, compact: true, cell: (p) => plain(p.ticker) },
  { label: 'Shares', className: 'num', compact: true, cell: (p) => plain(p.quantity) },
  { label: 'Avg cost', className: 'num', cell: (p) => money(p.avg_cost) },
  { label: 'Price', className: 'num', cell: (p) => money(p.market_price) },
  { label: 'Value', className: 'num', compact: true, cell: (p) => money(p.market_value) },
  { label: 'Unrealized P&L', className: 'num', compact: true, cell: (p) => signed(p.unrealized_pnl) },
  { label: 'Exit', compact: true, cell: exitMark },
];

/** positionsTable lists positions (GET /positions' items); compact keeps
 * ticker, shares, value, unrealized P&L and the exit. */
export function positionsTable(items, { compact = false } = {}) {
  return table({
    caption: 'Open positions',
    className: compact ? 'positions positions-compact' : 'positions',
    columns: compact ? columns.filter((c) => c.compact) : columns,
    // Not data-ticker: on the dashboard that names the signal rows.
    rows: items.map((p) => ({ data: p, attrs: { 'data-position': p.ticker } })),
    empty: 'No open positions.',
  });
}

/** hasConnection reports whether GET /broker's answer holds a saved
 * connection for the active mode; null when it is not known. */
function hasConnection(broker) {
  if (!broker || !broker.connections) return null;
  return !!broker.connections[broker.active_mode];
}

// outages word the failures that pass by themselves; IBKR's own words
// for them are terse ("Service Unavailable") and follow in brackets.
const outages = {
  broker_unavailable: (said) => `IBKR did not answer${said}: it may be busy or restarting. Try again in a moment.`,
  broker_rate_limited: (said) => `IBKR asked for fewer requests${said}. Try again in a moment.`,
  // Ordertune's words, not IBKR's: a look at the positions never signs
  // the other login out.
  broker_session_competing: () => 'Your IBKR session is in use by another login (Client Portal or TWS), which a look at your positions does not sign out. They show again once that login ends, or after your next order.',
};

// setupCodes are IBKR's refusals that the saved connection must fix.
const setupCodes = new Set(['broker_invalid_signature', 'broker_consumer_not_recognized', 'broker_token_expired',
  'broker_account_not_found', 'broker_no_permission', 'credentials_unavailable']);

function noConnection() {
  return h('p', { class: 'muted positions-note' },
    'No broker connection: connect your IBKR account in ',
    h('a', { href: '/settings/broker' }, 'Settings → Broker'),
    ' to see your positions here.');
}

/**
 * positionsView is a region that shows the positions. broker is a promise
 * of GET /broker's answer (null when it could not be read): without a
 * connection for the active mode it does not ask IBKR at all. headingId
 * names the heading that takes the focus when a Retry succeeds. It
 * returns {el, load, stop}: load({quiet}) reads the positions (quiet keeps
 * what is shown until the answer comes, for a refresh), stop makes later
 * answers go unshown (the page was left).
 */
export function positionsView({ compact = false, broker = null, headingId = '' } = {}) {
  const el = h('div', { class: 'positions-body', 'data-state': 'loading' }, h('p', { class: 'loading' }, 'Loading positions…'));
  let seq = 0;
  let stopped = false;

  function show(state, ...children) {
    el.dataset.state = state;
    el.removeAttribute('aria-busy');
    replace(el, ...children);
  }

  function failed(err, retry) {
    const said = err.detail || err.message;
    const outage = outages[err.code];
    const text = outage ? outage(said ? ` (${said.replace(/\.$/, '')})` : '') : sentence(said);
    return h('div', { class: 'notice notice-bad positions-note', role: 'alert' },
      h('p', null, h('strong', null, 'Positions could not be read from IBKR. '), text,
        setupCodes.has(err.code) ? [' ', h('a', { href: '/settings/broker' }, 'Check Settings → Broker'), '.'] : null),
      h('button', { type: 'button', class: 'btn', 'data-action': 'retry-positions', onclick: retry }, 'Retry'));
  }

  async function load({ quiet = false } = {}) {
    seq += 1;
    const mine = seq;
    if (quiet && el.dataset.state !== 'loading') el.setAttribute('aria-busy', 'true');
    else show('loading', h('p', { class: 'loading' }, 'Loading positions…'));
    const b = broker ? await Promise.resolve(broker).catch(() => null) : null;
    if (stopped || mine !== seq) return;
    if (hasConnection(b) === false) {
      show('no-broker', noConnection());
      return;
    }
    try {
      const data = await get('/positions');
      if (stopped || mine !== seq) return;
      const items = data.items || [];
      if (compact && !items.length) show('empty', h('p', { class: 'muted positions-note' }, 'No open positions.'));
      else show(items.length ? 'list' : 'empty', positionsTable(items, { compact }));
    } catch (err) {
      if (stopped || mine !== seq) return;
      // A connection saved but not usable (its credentials are refused
      // now) is a set-up step as well, not an outage.
      if (err.code === 'broker_not_connected') show('no-broker', noConnection());
      else show('error', failed(err, retry));
    }
  }

  async function retry(e) {
    const focused = document.activeElement === e.currentTarget;
    await load();
    if (!focused || stopped) return;
    // Keep the keyboard where it was: on the new Retry, or on the heading
    // of what came instead.
    const next = el.querySelector('[data-action=retry-positions]') || (headingId && document.getElementById(headingId));
    if (next) {
      if (next.tagName !== 'BUTTON') next.setAttribute('tabindex', '-1');
      next.focus();
    }
  }

  return { el, load, stop: () => { stopped = true; } };
}
