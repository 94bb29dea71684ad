// Portfolio: the account's positions (from IBKR, with the exit confirmed
// for each), realized P&L with a chart of its running total (SVG drawn
// here, no library), and the trades (IBKR's executions, kept forever) with
// filters and a CSV export.
import {
  h, replace, money, plain, dateTime, table, announce,
} from '../dom.js';
import { get, send, query } from '../api.js';
import { formAlert, showProblem, clearErrors } from '../forms.js';
import { positionsView, cents, fromCents, signed } from '../positions.js';

const SVG = 'http://www.w3.org/2000/svg';
const FILTERS = ['ticker', 'from', 'to'];
const GROUPS = [['day', 'Day'], ['month', 'Month'], ['strategy', 'Strategy'], ['ticker', 'Ticker']];

/** s creates an SVG element with attributes (never markup from text). */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/**
 * chart draws the running total of realized P&L over days as a line with
 * its zero line, axis labels at both ends and a title for screen readers.
 */
export function chart(days) {
  const W = 640; const H = 220; const L = 64; const R = 12; const T = 14; const B = 28;
  let total = 0;
  const pts = days.map((d) => { total += cents(d.realized_pnl); return { key: d.key, v: total }; });
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'pnl-chart', role: 'img', 'aria-labelledby': 'pnl-chart-title', 'data-points': pts.length,
  });
  const last = pts.length ? pts[pts.length - 1].v : 0;
  svg.append(s('title', { id: 'pnl-chart-title' },
    pts.length ? `Cumulative realized P&L: ${fromCents(last)} after ${pts.length} trading day${pts.length === 1 ? '' : 's'}` : 'No realized P&L yet'));
  if (!pts.length) return svg;
  const lo = Math.min(0, ...pts.map((p) => p.v)); const hi = Math.max(0, ...pts.map((p) => p.v));
  const span = hi - lo || 100;
  // The line starts at zero, before the first day: one day is a rise too.
  const x = (i) => L + ((i + 1) * (W - L - R)) / pts.length;
  const y = (v) => T + ((hi - v) * (H - T - B)) / span;
  const marks = [
    s('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), class: 'pnl-zero' }),
    s('text', { x: L - 6, y: y(hi) + 4, 'text-anchor': 'end', class: 'pnl-axis' }, money(fromCents(hi))),
    s('text', { x: L - 6, y: y(lo) + 4, 'text-anchor': 'end', class: 'pnl-axis' }, money(fromCents(lo))),
    s('text', { x: x(0), y: H - 8, 'text-anchor': pts.length === 1 ? 'end' : 'middle', class: 'pnl-axis' }, pts[0].key),
    pts.length > 1 ? s('text', { x: W - R, y: H - 8, 'text-anchor': 'end', class: 'pnl-axis' }, pts[pts.length - 1].key) : null,
    s('polyline', {
      points: [`${L},${y(0).toFixed(1)}`, ...pts.map((p, i) => `${x(i).toFixed(1)},${y(p.v).toFixed(1)}`)].join(' '),
      class: last >= 0 ? 'pnl-line' : 'pnl-line pnl-line-down',
    }),
    ...pts.map((p, i) => s('circle', { cx: x(i).toFixed(1), cy: y(p.v).toFixed(1), r: 3, class: 'pnl-dot' },
      s('title', null, `${p.key}: ${fromCents(p.v)}`))),
  ];
  svg.append(...marks.filter(Boolean));
  return svg;
}

function pnlTable(items, group) {
  const label = GROUPS.find((g) => g[0] === group)[1];
  let total = 0; let comm = 0; let trades = 0;
  for (const r of items) { total += cents(r.realized_pnl); comm += cents(r.commissions); trades += r.trades; }
  const rows = items.map((r) => ({ data: r, attrs: { 'data-key': r.key } }));
  const t = table({
    caption: `Realized P&L by ${label.toLowerCase()}`,
    columns: [
      { label, header: true, cell: (r) => (r.key === 'external' ? 'Not placed by Ordertune' : plain(r.key)) },
      { label: 'Realized P&L', className: 'num', cell: (r) => signed(r.realized_pnl) },
      { label: 'Commissions', className: 'num', cell: (r) => money(r.commissions) },
      { label: 'Exits', className: 'num', cell: (r) => plain(r.trades) },
    ],
    rows,
    empty: 'No round trips closed yet.',
  });
  const summary = h('dl', { class: 'facts pnl-summary', 'data-total': fromCents(total) },
    h('div', null, h('dt', null, 'Realized P&L'), h('dd', null, signed(fromCents(total)))),
    h('div', null, h('dt', null, 'Commissions'), h('dd', null, money(fromCents(comm)))),
    h('div', null, h('dt', null, 'Closing trades'), h('dd', null, plain(trades))));
  return [summary, t];
}

function tradesTable(items) {
  return table({
    caption: 'Trades, newest first',
    columns: [
      { label: 'Executed', cell: (t) => dateTime(t.executed_at) },
      { label: 'Ticker', header: true, cell: (t) => plain(t.ticker) },
      { label: 'Side', cell: (t) => (t.side === 'SELL' ? 'Sell' : 'Buy') },
      { label: 'Shares', className: 'num', cell: (t) => plain(t.quantity) },
      { label: 'Price', className: 'num', cell: (t) => money(t.price) },
      { label: 'Commission', className: 'num', cell: (t) => (t.commission == null ? 'not yet reported' : money(t.commission)) },
      { label: 'Strategy', cell: (t) => (t.external ? 'Not placed by Ordertune' : plain(t.strategy)) },
      {
        label: 'Order',
        cell: (t) => (t.confirmation_id
          ? h('a', { href: `/confirmations/${encodeURIComponent(t.confirmation_id)}`, 'aria-label': `${t.ticker} ${t.side === 'SELL' ? 'sell' : 'buy'}: open the confirmation` }, 'Confirmation')
          : h('span', { class: 'muted' }, 'External')),
      },
    ],
    rows: items.map((t) => ({ data: t, attrs: { 'data-trade-id': t.id, 'data-external': t.external ? 'true' : null } })),
    empty: 'No trades yet.',
  });
}

/** page is the Portfolio page. */
export const page = {
  title: 'Portfolio',
  async render(main, ctx) {
    const f = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || '']));
    const group = GROUPS.some((g) => g[0] === ctx.query.get('group')) ? ctx.query.get('group') : 'day';
    // Without a broker connection there is nothing to ask IBKR for.
    const held = positionsView({ broker: get('/broker').catch(() => null), headingId: 'positions-h' });
    ctx.setCleanup(held.stop);
    const positions = h('section', { 'aria-labelledby': 'positions-h' }, h('h2', { id: 'positions-h' }, 'Positions'), held.el);
    const pnl = h('section', { 'aria-labelledby': 'pnl-h' }, h('h2', { id: 'pnl-h' }, 'Realized P&L'),
      h('div', { class: 'pnl-body' }, h('p', { class: 'loading' }, 'Loading…')));
    const input = (name, label, attrs) => {
      const id = `trades-${name}`;
      return h('div', { class: 'field', 'data-field': name }, h('label', { for: id }, label),
        h('input', { id, name, value: f[name], 'aria-describedby': `${id}-err`, ...attrs }),
        h('p', { class: 'field-error', id: `${id}-err`, hidden: true }));
    };
    const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the trades', novalidate: true },
      input('ticker', 'Ticker', { type: 'text', autocomplete: 'off', spellcheck: 'false', class: 'short' }),
      input('from', 'From', { type: 'date' }),
      input('to', 'To', { type: 'date' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Apply'),
        h('a', { class: 'btn btn-quiet', href: '/portfolio' }, 'Clear')));
    const filterBox = h('div', { class: 'filter-box' }, formAlert(), filters);
    filters.addEventListener('submit', (e) => {
      e.preventDefault();
      const q = { group: group === 'day' ? '' : group };
      for (const k of FILTERS) q[k] = (filters.elements[k].value || '').trim();
      if (q.ticker) q.ticker = q.ticker.toUpperCase();
      if (q.from && q.to && q.to < q.from) {
        showProblem(filterBox, { errors: [{ field: 'to', message: 'The end date is before the start date.' }] });
        return;
      }
      ctx.navigate(`/portfolio${query(q)}`);
    });
    const trades = h('section', { 'aria-labelledby': 'trades-h' },
      h('div', { class: 'page-head' }, h('h2', { id: 'trades-h' }, 'Trades'),
        h('a', { class: 'btn', href: `/api/v1/trades${query({ ...f, format: 'csv' })}`, download: 'ordertune-trades.csv', 'data-action': 'csv' }, 'Download CSV')),
      filterBox, h('div', { class: 'trades-body' }, h('p', { class: 'loading' }, 'Loading…')));
    const refreshBox = h('div', { class: 'refresh-box' }, formAlert());
    const refresh = h('button', {
      type: 'button', class: 'btn', 'data-action': 'refresh',
      onclick: async () => {
        refresh.disabled = true;
        try {
          const r = await send('POST', '/trades/import');
          clearErrors(refreshBox);
          announce(r.stored ? `${r.stored} new trade${r.stored === 1 ? '' : 's'} from IBKR` : 'No new trades at IBKR');
          await loadAll(true);
        } catch (err) {
          showProblem(refreshBox, err);
        } finally {
          refresh.disabled = false;
        }
      },
    }, 'Refresh from IBKR');
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Portfolio'), refresh),
      h('p', { class: 'lead' }, 'Positions as IBKR holds them now; profit and loss from the trades Ordertune has recorded (first in, first out, commissions included). Trades are read from IBKR after each auction and every half hour.'),
      refreshBox, positions, pnl, trades);

    async function loadPnL() {
      const body = pnl.querySelector('.pnl-body');
      try {
        const range = { from: f.from, to: f.to };
        const [days, grouped] = await Promise.all([
          get(`/pnl${query({ ...range, group: 'day' })}`),
          group === 'day' ? null : get(`/pnl${query({ ...range, group })}`),
        ]);
        const picker = h('nav', { class: 'group-picker', 'aria-label': 'Group the P&L by' },
          GROUPS.map(([g, label]) => h('a', {
            href: `/portfolio${query({ ...f, group: g === 'day' ? '' : g })}`, 'aria-current': g === group ? 'true' : null, class: 'btn btn-quiet',
          }, label)));
        replace(body, h('figure', { class: 'pnl-figure' }, chart(days.items || []),
          h('figcaption', null, 'Cumulative realized P&L by exchange day')), picker,
        pnlTable((grouped || days).items || [], group));
      } catch (err) {
        replace(body, h('p', { class: 'notice notice-bad', role: 'alert' }, err.message));
      }
    }
    let items = [];
    async function loadTrades(cursor) {
      const body = trades.querySelector('.trades-body');
      try {
        const data = await get(`/trades${query({ ...f, cursor, limit: 100 })}`);
        clearErrors(filterBox);
        items = cursor ? items.concat(data.items || []) : (data.items || []);
        replace(body, tradesTable(items),
          data.next_cursor ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', onclick: () => loadTrades(data.next_cursor) }, 'Show more')) : null);
      } catch (err) {
        if (!body.querySelector('table')) replace(body);
        showProblem(filterBox, err);
      }
    }
    async function loadAll(quiet) {
      await Promise.all([held.load({ quiet }), loadPnL(), loadTrades('')]);
    }
    await loadAll(false);
  },
};
