// Live prices from the signed-in user's own IBKR session, through
// Ordertune's pass-through (/api/v1/ibkr/…). They are shown next to the
// reference close for orientation only: every amount Ordertune computes
// (the estimated value, the quantity) stays the server's, from the
// reference close. A missing price never blocks anything: the views show a
// muted dash and say why in their title.
import { h, replace, money, exchangeTime } from './dom.js';
import { get } from './api.js';

const POLL_MS = 3000; // IBKR allows a snapshot a second; every 3 s is plenty.
const RETRY_MS = 1000; // IBKR often answers a first snapshot without prices.
const ERROR_MS = 30000; // after a transient failure (503, 429, network).
const FIELDS = '31,84,86'; // last, bid, ask
const CHUNK = 50; // conids per snapshot request

/**
 * priceValue turns an IBKR market-data value ("187.30", "C187.25" for a
 * prior close, "H187.3" for halted) into a plain decimal string, or ''
 * when it holds no positive price.
 */
export function priceValue(v) {
  const s = String(v == null ? '' : v).trim().replace(/^[A-Za-z]+/, '').replace(/,/g, '');
  return /^\d+(\.\d+)?$/.test(s) && /[1-9]/.test(s) ? s : '';
}

/** changeText says how far price is from the reference close, in words
 * and sign ("+0.12 %"), never by colour alone. */
function changeText(price, ref) {
  const p = Number(price);
  const r = Number(ref);
  if (!(p > 0) || !(r > 0)) return '';
  const pct = ((p - r) / r) * 100;
  const s = Math.abs(pct).toFixed(2);
  if (s === '0.00') return '±0.00 %';
  return `${pct > 0 ? '+' : '−'}${s} %`;
}

function timeText(ms) {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? '' : exchangeTime(d, { date: false }).text;
}

/**
 * livePriceFeed polls IBKR snapshots for the tickers its views show, once
 * ready (when given) resolves with no reason against it. view()
 * makes an element that stays current while it is in the page; stop() ends
 * polling (the page's cleanup calls it). Polling pauses while the tab is
 * hidden.
 */
export function livePriceFeed({ ready } = {}) {
  // ready resolves with why no prices can come ('' when they can): a page
  // that knows there is no broker saves IBKR, and the console, a refusal.
  const gate = ready || Promise.resolve('');
  const conids = new Map(); // ticker → conid, or 0 when IBKR has no US listing
  const quotes = new Map(); // conid → {price, bid, ask, updated}
  const views = new Map(); // ticker → Set of {el, ref, detail}
  const seen = new WeakSet(); // views that have been in the page
  let unavailable = ''; // why no prices can come, for every view
  let stopped = false;
  let timer = null;
  let busy = false;
  const retried = new Set(); // conids whose empty first answer was asked again

  function render(v, ticker) {
    const conid = conids.get(ticker);
    const q = conid ? quotes.get(conid) : null;
    v.el.dataset.ticker = ticker;
    if (conid) v.el.dataset.conid = String(conid);
    if (q && q.price) {
      const change = changeText(q.price, v.ref);
      const bidAsk = [q.bid && `bid ${money(q.bid)}`, q.ask && `ask ${money(q.ask)}`].filter(Boolean).join(', ');
      v.el.dataset.price = q.price;
      v.el.dataset.updated = String(q.updated || '');
      v.el.dataset.state = 'live';
      v.el.title = `Last price from your IBKR session${q.updated ? ` at ${timeText(q.updated)}` : ''}${bidAsk ? `; ${bidAsk}` : ''}. Orders use the reference close for their estimate.`;
      if (v.detail) {
        replace(v.el,
          h('span', { class: 'live-last' }, money(q.price)),
          change ? h('span', { class: 'sub' }, `${change} vs reference close`) : null,
          bidAsk ? h('span', { class: 'sub' }, `${bidAsk[0].toUpperCase()}${bidAsk.slice(1).replace(', ', ' · ')}`) : null);
      } else {
        replace(v.el, h('span', { class: 'live-last' }, money(q.price)), change ? h('span', { class: 'sub' }, change) : null);
      }
      return;
    }
    delete v.el.dataset.price;
    let why = unavailable;
    if (!why && conid === 0) why = `IBKR lists no US stock for ${ticker}.`;
    if (!why && conid && q) why = 'IBKR has no price for it yet.';
    v.el.dataset.state = why ? 'unavailable' : 'loading';
    v.el.title = why ? `Live price unavailable: ${why}` : 'Getting the live price…';
    if (v.detail) {
      replace(v.el, h('span', { class: 'muted' }, why ? 'Live price unavailable' : 'Getting the live price…'),
        why ? h('span', { class: 'sub' }, why) : null);
    } else {
      replace(v.el, h('span', { class: 'muted', 'aria-hidden': 'true' }, '—'),
        h('span', { class: 'sr-only' }, why ? 'Live price unavailable' : 'Getting the live price'));
    }
  }

  /** tickers lists the tickers of views still (or not yet) in the page. */
  function tickers() {
    for (const [t, set] of views) {
      for (const v of set) {
        if (v.el.isConnected) seen.add(v.el);
        else if (seen.has(v.el)) set.delete(v);
      }
      if (!set.size) views.delete(t);
    }
    return [...views.keys()];
  }

  function renderAll() {
    for (const [t, set] of views) for (const v of set) render(v, t);
  }

  async function resolve(list) {
    const missing = list.filter((t) => !conids.has(t));
    if (!missing.length) return;
    const data = await get(`/ibkr/trsrv/stocks?symbols=${encodeURIComponent(missing.join(','))}`, { quietAuth: true });
    for (const t of missing) {
      const entries = (data && (data[t] || data[t.toUpperCase()])) || [];
      let conid = 0;
      for (const e of Array.isArray(entries) ? entries : []) {
        const c = (e.contracts || []).find((x) => x && x.isUS && Number(x.conid) > 0);
        if (c) { conid = Number(c.conid); break; }
      }
      conids.set(t, conid);
    }
  }

  /** snapshot fetches quotes for ids; it reports whether a conid answered
   * without a price for the first time, which IBKR does while it starts
   * streaming (worth one quick retry). */
  async function snapshot(ids) {
    let anyMissing = false;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      const rows = await get(`/ibkr/iserver/marketdata/snapshot?conids=${part.join(',')}&fields=${FIELDS}`, { quietAuth: true });
      for (const row of Array.isArray(rows) ? rows : []) {
        const conid = Number(row && row.conid);
        if (!part.includes(conid)) continue;
        const price = priceValue(row['31']);
        if (!price && !retried.has(conid)) { retried.add(conid); anyMissing = true; }
        const before = quotes.get(conid);
        // A row without a price keeps the last one shown rather than
        // flickering to a dash.
        if (price || !before) {
          quotes.set(conid, { price, bid: priceValue(row['84']), ask: priceValue(row['86']), updated: Number(row._updated) || Date.now() });
        }
      }
    }
    return anyMissing;
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = null;
    if (stopped || document.visibilityState !== 'visible') return;
    timer = setTimeout(tick, ms);
  }

  async function tick() {
    timer = null;
    if (stopped || busy || document.visibilityState !== 'visible') return;
    busy = true;
    const why = await gate;
    busy = false;
    if (stopped) return;
    if (why) {
      unavailable = why;
      renderAll();
      return;
    }
    const list = tickers();
    if (!list.length) { schedule(POLL_MS); return; }
    busy = true;
    let next = POLL_MS;
    try {
      await resolve(list);
      const ids = [...new Set(list.map((t) => conids.get(t)).filter(Boolean))];
      if (ids.length) {
        const missing = await snapshot(ids);
        if (missing) next = RETRY_MS;
      }
      unavailable = '';
    } catch (err) {
      unavailable = err.detail || err.message || 'IBKR did not answer.';
      if (err.status === 0 || err.status === 429 || err.status >= 500) {
        next = ERROR_MS;
      } else {
        // Not connected, not allowed, signed out: asking again will not
        // help until the user changes something on another page.
        next = 0;
      }
    } finally {
      busy = false;
    }
    if (stopped) return;
    renderAll();
    if (next) schedule(next);
  }

  function onVisibility() {
    if (document.visibilityState === 'visible' && !timer && !busy && !stopped) tick();
    else if (document.visibilityState !== 'visible') { clearTimeout(timer); timer = null; }
  }
  document.addEventListener('visibilitychange', onVisibility);

  return {
    /** view returns an element showing ticker's live price; ref is the
     * reference close it is compared with; detail shows bid, ask and time. */
    view(ticker, ref, { detail = false } = {}) {
      const el = h('span', { class: detail ? 'live-price live-price-detail' : 'live-price' });
      const v = { el, ref, detail };
      if (!views.has(ticker)) views.set(ticker, new Set());
      views.get(ticker).add(v);
      render(v, ticker);
      if (!timer && !busy && !stopped && !unavailable) schedule(0);
      return el;
    },
    /** stop ends polling for good. */
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
  };
}
