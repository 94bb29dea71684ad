// The dashboard: today's signals with the user's own status on each, and
// the Confirm Buy / Confirm Sell dialog. Statuses that can still change are
// polled, so Submitted turns into Filled (or Failed, with IBKR's message)
// without a reload. Below them, a compact panel of the account's
// positions, loaded once the signals are shown: IBKR's answer must never
// hold up the signals.
import {
  h, replace, adviceLine, badge, money, decimalTimes, fractionPercent, plain, entryModeLabel, dateTime, pendingStatus, statusLabel, sentence, announce, newIdempotencyKey, table,
} from '../dom.js';
import { get, call, query } from '../api.js';
import { livePriceFeed } from '../liveprice.js';
import { limitLines, blocked, banner } from '../risk.js';
import { positionsView } from '../positions.js';

const POLL_MS = 2000;

/** closesAt shows when confirming ends, in the exchange's time: the time
 * alone when that is on the entry date, as it normally is (the auction
 * cut-off). */
function closesAt(sig) {
  return dateTime(sig.expires_at, { seconds: false, date: sig.entry_date });
}

function sideOf(signal) {
  return signal.kind === 'exit' ? 'SELL' : 'BUY';
}

function orderTypeLabel(p) {
  const names = { MKT: 'Market', LMT: 'Limit', MOC: 'Market on close' };
  const tifs = { OPG: 'at the open', DAY: 'today' };
  const base = names[p.order_type] || p.order_type;
  if (p.order_type === 'MOC') return `${base} (MOC)`;
  return `${base} ${tifs[p.tif] || ''} (${[p.order_type, p.tif].filter(Boolean).join(', ')})`.replace(/\s+\(/, ' (');
}

function statusCell(sig) {
  const c = sig.my_confirmation;
  if (!c) return h('span', { class: 'muted' }, 'Not confirmed');
  const parts = [h('a', { href: `/confirmations/${encodeURIComponent(c.id)}`, class: 'status-link' }, badge(c.status))];
  if (c.status === 'filled' || c.status === 'partially_filled') {
    if (c.filled_quantity && c.avg_fill_price) parts.push(h('span', { class: 'small muted' }, ` ${c.filled_quantity} @ ${money(c.avg_fill_price)}`));
  }
  if (c.error && c.error.message) parts.push(h('p', { class: 'status-error' }, sentence(c.error.message)));
  if (c.error && c.error.advice) parts.push(adviceLine(c.error.advice));
  return h('div', { class: 'status-cell' }, parts);
}

function canConfirm(sig) {
  const c = sig.my_confirmation;
  return !c || c.status === 'failed' || c.status === 'cancelled';
}

/** missingSteps lists what must be set up before any order can go, each
 * with where to do it; broker and settings are GET /broker and /settings
 * (null when they could not be read). */
function missingSteps(broker, settings) {
  const todo = [];
  const conn = broker && broker.connections && broker.connections[broker.active_mode];
  if (broker && (!conn || conn.status !== 'connected')) {
    todo.push({ key: 'broker', href: '/settings/broker', link: 'Connect your Interactive Brokers account', rest: ' and test the connection.' });
  }
  if (settings && settings.position_size && settings.position_size.mode === 'off') {
    todo.push({ key: 'position-size', href: '/settings/position-size', link: 'Set a position size', rest: ': how much to buy on each signal.' });
  }
  return todo;
}

/** timeLeft words the time until at: "1 h 05 min", "4 min 09 s". */
function timeLeft(at, now = Date.now()) {
  const secs = Math.max(0, Math.floor((at - now) / 1000));
  const pad = (n) => String(n).padStart(2, '0');
  if (secs >= 3600) return `${Math.floor(secs / 3600)} h ${pad(Math.floor(secs / 60) % 60)} min`;
  if (secs >= 60) return `${Math.floor(secs / 60)} min ${pad(secs % 60)} s`;
  return `${secs} s`;
}

/** cutoffLine says when confirmations of the order's signal close, in the
 * exchange's time (the reader's own on hover), counts down to it every
 * second, and names the trading day whose auction the order is for. When
 * the cut-off passes, onPassed runs once. It returns the line and a
 * function that stops the countdown. */
function cutoffLine(p, onPassed) {
  if (!p.cutoff_at) return { el: null, stop: () => {} };
  const at = new Date(p.cutoff_at);
  const left = h('span', { 'data-fact': 'time-left' }, timeLeft(at));
  const el = h('p', { class: 'small', 'data-fact': 'cutoff' },
    'Confirmations close ', dateTime(p.cutoff_at, { seconds: false, weekday: true, date: false }), ' (in ', left, ')',
    p.auction_date ? `, for the auction of ${p.auction_date}.` : '.');
  let passed = false;
  const tick = setInterval(() => {
    left.textContent = timeLeft(at);
    if (!passed && at - Date.now() <= 0) {
      passed = true;
      clearInterval(tick);
      onPassed();
    }
  }, 1000);
  return { el, stop: () => clearInterval(tick) };
}

/** whatIfLines shows IBKR's what-if for the order: commission, margin and
 * equity after it, and IBKR's warnings. */
function whatIfLines(w) {
  if (!w || w.refusal) return null;
  return h('div', { class: 'whatif', 'data-fact': 'whatif' },
    h('h3', null, 'What IBKR says'),
    h('dl', { class: 'facts' },
      h('div', null, h('dt', null, 'Commission'), h('dd', null, money(w.commission))),
      h('div', null, h('dt', null, 'Initial margin change'), h('dd', null, money(w.initial_margin_change))),
      h('div', null, h('dt', null, 'Equity with loan after'), h('dd', null, money(w.equity_with_loan_after)))),
    (w.warnings || []).length ? h('ul', { class: 'notice notice-warn' }, w.warnings.map((t) => h('li', null, t))) : null);
}

function stepList(todo, onLink) {
  return h('ul', { class: 'setup-steps' }, todo.map((s) => h('li', { 'data-step': s.key },
    h('a', { href: s.href, onclick: onLink || null }, s.link), s.rest)));
}

function confirmDialog(sig, feed, setup, onDone, onFailed) {
  const side = sideOf(sig);
  const verb = side === 'BUY' ? 'Buy' : 'Sell';
  // One key per dialog: a double click, a retry after a network error or a
  // second submit from this dialog is the same request to the server.
  const key = newIdempotencyKey();
  const body = h('div', { class: 'dialog-body' }, h('p', { class: 'loading' }, 'Getting the order details…'));
  const alert = h('div', { class: 'form-alert', role: 'alert', tabindex: '-1', hidden: true });
  const confirmBtn = h('button', { type: 'button', class: 'btn btn-primary', disabled: true }, `Confirm ${verb}`);
  const cancelBtn = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const titleId = `confirm-title-${sig.id}`;
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, `Confirm ${verb} ${sig.ticker}`),
    body, alert,
    h('div', { class: 'actions dialog-actions' }, confirmBtn, cancelBtn));
  let sent = false;
  let armed = true; // false while the live account waits for the typed ticker
  let closed = false; // the cut-off passed while the dialog was open
  let stopCountdown = () => {};
  const close = () => { dlg.close(); };
  cancelBtn.addEventListener('click', close);
  dlg.addEventListener('close', () => {
    stopCountdown();
    dlg.remove();
    onDone(null);
  });
  document.body.append(dlg);
  dlg.showModal();
  // Focus starts, and stays, on Cancel: two presses of Enter must never
  // place an order.
  cancelBtn.focus();

  const showError = (err, extra) => {
    // IBKR's refusal: its words (the detail), then what to do about them.
    const advice = err.advice || (err.confirmation && err.confirmation.error && err.confirmation.error.advice);
    replace(alert, h('p', null, err.detail || err.message), adviceLine(advice), extra || null);
    alert.hidden = false;
    alert.focus();
  };

  const todo = missingSteps(setup.broker, setup.settings);
  if (todo.length) {
    // Name every missing step at once, rather than the first the server
    // happens to check.
    confirmBtn.hidden = true;
    cancelBtn.textContent = 'Close';
    replace(body,
      h('p', null, 'Ordertune cannot place this order yet. First:'),
      stepList(todo, () => dlg.close()));
    return;
  }

  get(`/signals/${encodeURIComponent(sig.id)}/preview`).then((p) => {
    if (!dlg.isConnected) return; // closed before the preview came
    const live = p.broker && p.broker.mode === 'live';
    const atRef = decimalTimes(sig.ref_close, p.quantity);
    let typed = null;
    const cutoff = cutoffLine(p, () => {
      // The server would answer past_cutoff: say so, and offer nothing.
      closed = true;
      if (!sent) {
        confirmBtn.disabled = true;
        showError({ message: 'Confirmations for this signal have closed: the order would miss its auction.' });
      }
    });
    stopCountdown = cutoff.stop;
    if (live) {
      armed = false;
      const id = `confirm-ticker-${sig.id}`;
      const input = h('input', { id, type: 'text', class: 'ticker-input', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': `${id}-help` });
      input.addEventListener('input', () => {
        armed = input.value.trim().toUpperCase() === sig.ticker;
        confirmBtn.disabled = !armed || closed;
      });
      typed = h('div', { class: 'field confirm-typed' },
        h('label', { for: id }, `Type ${sig.ticker} to confirm`),
        h('p', { class: 'help', id: `${id}-help` }, 'A live order spends real money: typing the ticker makes sure it is meant.'),
        input);
    }
    replace(body,
      h('dl', { class: 'facts' },
        h('div', null, h('dt', null, 'Side'), h('dd', null, p.side === 'SELL' ? 'Sell' : 'Buy')),
        h('div', null, h('dt', null, 'Order type'), h('dd', null, orderTypeLabel(p))),
        h('div', null, h('dt', null, 'Limit price'), h('dd', null, p.limit_price ? money(p.limit_price) : 'None')),
        h('div', null, h('dt', null, 'Quantity'), h('dd', { 'data-fact': 'quantity' }, `${plain(p.quantity)} shares`)),
        h('div', null, h('dt', null, 'Reference close'), h('dd', null, money(sig.ref_close))),
        h('div', null, h('dt', null, 'Live price'), h('dd', { 'data-fact': 'live-price' }, feed.view(sig.ticker, sig.ref_close, { detail: true }))),
        h('div', null, h('dt', null, 'Estimated value (at reference close)'), h('dd', { 'data-fact': 'estimated-value' }, money(atRef))),
        p.limit_price ? h('div', null, h('dt', null, 'Estimated value (at limit price)'), h('dd', { 'data-fact': 'estimated-value-limit' }, money(p.estimated_value))) : null,
        h('div', null, h('dt', null, 'Broker'), h('dd', null, (p.broker && p.broker.name) || 'Interactive Brokers')),
        h('div', null, h('dt', null, 'Mode'), h('dd', null, live ? 'Live' : 'Paper')),
        h('div', null, h('dt', null, 'Account'), h('dd', { class: 'mono' }, plain(p.broker && p.broker.account_id_masked)))),
      live ? h('p', { class: 'notice notice-warn' }, 'This places a real order in your live account.')
        : h('p', { class: 'muted small' }, 'Paper trading: no real money moves.'),
      typed,
      h('p', { class: 'small muted' }, p.limit_price
        ? 'The order cannot fill above the limit price, so the limit estimate is the most it can cost; the fill price is set by the market.'
        : 'The estimate uses the reference close, not the live price; the fill price is set by the market.'),
      cutoff.el,
      whatIfLines(p.whatif),
      limitLines(p.limits));
    const over = (p.limits || []).filter((l) => !l.ok);
    if (over.length) {
      // The server would refuse it (risk_limit_exceeded): say so now.
      showError({ message: 'This order is over your risk limit, so it cannot be placed. Lower the position size or change your limits.' },
        h('p', null, h('a', { href: '/settings/risk', onclick: () => dlg.close() }, 'Settings → Risk')));
      return;
    }
    if (p.whatif && p.whatif.refusal) {
      // IBKR said it would refuse the order: show its words before anyone
      // presses Confirm.
      showError({ message: `IBKR would refuse this order: ${p.whatif.refusal}`, advice: p.whatif.refusal_advice });
      return;
    }
    confirmBtn.disabled = !armed || closed;
  }).catch((err) => {
    replace(body, h('p', null, 'Ordertune cannot place this order yet.'));
    const fix = [];
    if (/position size/i.test(err.detail)) fix.push(h('a', { href: '/settings/position-size' }, 'Set a position size'));
    if (/broker|connect/i.test(err.detail) || String(err.code).startsWith('broker_')) fix.push(h('a', { href: '/settings/broker' }, 'Check Settings → Broker'));
    showError(err, fix.length ? h('p', null, fix.flatMap((a, i) => (i ? [' · ', a] : [a]))) : null);
    for (const a of fix) a.addEventListener('click', () => dlg.close());
  });

  confirmBtn.addEventListener('click', async () => {
    if (sent || !armed || closed) return;
    sent = true;
    confirmBtn.disabled = true;
    confirmBtn.textContent = 'Sending…';
    cancelBtn.disabled = true;
    try {
      const { data } = await call('POST', `/signals/${encodeURIComponent(sig.id)}/confirm`, { side }, { headers: { 'Idempotency-Key': key } });
      onDone(data);
      dlg.close();
    } catch (err) {
      cancelBtn.disabled = false;
      cancelBtn.textContent = 'Close';
      if (err.status === 0 || err.status >= 500) {
        // Nothing is known to have happened: the same key makes a retry safe.
        sent = false;
        confirmBtn.disabled = false;
        confirmBtn.textContent = 'Try again';
      } else {
        confirmBtn.textContent = `Confirm ${verb}`;
      }
      showError(err);
      // IBKR may have refused the order after Ordertune recorded it: the
      // row behind the dialog shows the failed confirmation at once.
      onFailed();
    }
  });
}

function setupNotice(broker, settings) {
  const todo = missingSteps(broker, settings);
  if (!todo.length) return null;
  return h('section', { class: 'notice notice-info setup', 'aria-labelledby': 'setup-h' },
    h('h2', { id: 'setup-h' }, 'Before you can confirm'), stepList(todo));
}

/** signals is the dashboard page. */
export const signals = {
  title: 'Signals',
  async render(main, ctx) {
    let scope = ctx.query.get('status') === 'all' ? 'all' : 'open';
    let timer = null;
    let stopped = false;
    let current = [];
    const setup = Promise.allSettled([get('/broker'), get('/settings')]).then(([b, s]) => ({
      broker: b.status === 'fulfilled' ? b.value : null,
      settings: s.status === 'fulfilled' ? s.value : null,
    }));
    // Without a connected broker there are no live prices: do not ask.
    const feed = livePriceFeed({
      ready: setup.then(({ broker }) => (missingSteps(broker, null).length ? 'connect your IBKR account in Settings → Broker to see live prices.' : '')),
    });
    const held = positionsView({ compact: true, broker: setup.then((st) => st.broker), headingId: 'dash-positions-h' });
    let heldTimer = null;
    ctx.setCleanup(() => { stopped = true; clearTimeout(timer); clearTimeout(heldTimer); feed.stop(); held.stop(); });
    // A confirm or a fill changes what is held or the exit mark: read the
    // positions again, once for a burst of changes, keeping what is shown
    // until the answer comes.
    const refreshHeld = () => {
      clearTimeout(heldTimer);
      heldTimer = setTimeout(() => { if (!stopped) held.load({ quiet: true }); }, 300);
    };
    const modeNote = h('span', { class: 'small muted' });
    setup.then(({ broker }) => {
      if (broker && broker.active_mode) modeNote.textContent = broker.active_mode === 'live' ? 'Live account' : 'Paper account';
    });
    const positionsPanel = h('section', { class: 'positions-panel', 'aria-labelledby': 'dash-positions-h' },
      h('div', { class: 'panel-head' },
        h('h2', { id: 'dash-positions-h' }, 'Positions'), modeNote,
        h('a', { href: '/portfolio', class: 'panel-link' }, 'Portfolio: P&L and trades')),
      held.el);

    const region = h('div', { class: 'signals-region', 'aria-live': 'off' }, h('p', { class: 'loading' }, 'Loading signals…'));
    const scopeSel = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Which signals' },
      ['open', 'all'].map((v) => {
        const id = `scope-${v}`;
        return h('span', null,
          h('input', { type: 'radio', name: 'scope', id, value: v, checked: v === scope, onchange: () => { scope = v; history.replaceState(null, '', v === 'all' ? '/?status=all' : '/'); load(true); } }),
          h('label', { for: id }, v === 'open' ? 'Open' : 'All'));
      }));
    const setupSlot = h('div');
    const riskSlot = h('div');
    // Why confirms are refused now (pause, suspension, halt of the active
    // mode): {entries, exits}, each a reason or null.
    let stop = { entries: null, exits: null };
    // The outcome of the last confirm, in words, above the table.
    const flash = h('div', { class: 'confirm-flash', role: 'status' });
    replace(main,
      h('div', { class: 'page-head' },
        h('h1', null, 'Signals'),
        scopeSel),
      h('p', { class: 'lead' }, 'Each row is one signal. Confirm Buy or Confirm Sell places the order at Interactive Brokers for you, with your position size.'),
      h('details', { class: 'legend' }, h('summary', null, 'What the columns mean'),
        h('dl', { class: 'facts' },
          h('div', null, h('dt', null, 'Strategy (I–IX)'), h('dd', null, 'Which of Ordertune\'s nine strategies published the signal. An exit sells what the same strategy\'s entry in that ticker bought.')),
          h('div', null, h('dt', null, 'RSI(2)'), h('dd', null, 'The 2-day Relative Strength Index at the signal close, from 0 to 100: below 10 means the stock fell hard over two days.')),
          h('div', null, h('dt', null, '2-day return'), h('dd', null, 'How much the stock moved over the last two closes.')),
          h('div', null, h('dt', null, 'Entry mode'), h('dd', null, 'How the order is placed: market on open, limit on open (never above the limit) or market on close.')))),
      setupSlot,
      riskSlot,
      flash,
      region,
      positionsPanel);

    Promise.allSettled([setup, get('/settings/risk')]).then(([st, r]) => {
      if (stopped) return;
      const { broker, settings } = st.value;
      replace(setupSlot, setupNotice(broker, settings));
      if (r.status === 'fulfilled') {
        stop = blocked(r.value, broker ? broker.active_mode : null);
        replace(riskSlot, banner(stop));
        for (const sig of current) updateRow(sig);
      }
    });

    function actionCell(sig) {
      if (!canConfirm(sig)) return h('span', { class: 'muted small' }, 'Confirmed');
      if (sig.kind === 'exit' && sig.sellable === 0) {
        return h('span', { class: 'muted small', 'data-action': 'nothing-to-sell' },
          `Nothing to sell: you hold no ${sig.ticker} from a strategy ${sig.strategy} entry.`);
      }
      const verb = sideOf(sig) === 'BUY' ? 'Buy' : 'Sell';
      const why = verb === 'Buy' ? stop.entries : stop.exits;
      return h('button', {
        type: 'button',
        class: `btn ${verb === 'Buy' ? 'btn-buy' : 'btn-sell'}`,
        disabled: !!why,
        title: why || null,
        'aria-describedby': why ? 'risk-banner' : null,
        'data-action': 'confirm',
        'aria-label': `Confirm ${verb} ${sig.ticker}, strategy ${sig.strategy}`,
        onclick: (e) => openDialog(sig, e.currentTarget),
      }, `Confirm ${verb}`);
    }

    async function openDialog(sig, opener) {
      clearTimeout(timer);
      confirmDialog(sig, feed, await setup, (conf) => {
        if (conf) {
          sig.my_confirmation = conf;
          updateRow(sig);
          showFlash(sig, conf);
          refreshHeld();
        }
        const row = region.querySelector(`tr[data-signal-id="${CSS.escape(sig.id)}"]`);
        const target = (row && row.querySelector('.status-link, [data-action=confirm]')) || opener;
        if (target && target.isConnected) target.focus();
        schedule();
      }, () => load(false));
    }

    function showFlash(sig, conf) {
      const verb = conf.side === 'SELL' ? 'Sell' : 'Buy';
      const bad = conf.status === 'failed';
      replace(flash, h('div', { class: `notice ${bad ? 'notice-bad' : 'notice-ok'}`, 'data-confirmation-id': conf.id },
        h('p', null,
          h('strong', null, bad ? `${verb} ${sig.ticker} failed.` : `${verb} order for ${plain(conf.quantity)} ${sig.ticker} sent to IBKR.`),
          ' Status: ', badge(conf.status), ' ',
          h('a', { href: `/confirmations/${encodeURIComponent(conf.id)}` }, 'Follow this order'))));
    }

    function renderTable(items) {
      current = items;
      replace(region, table({
        caption: scope === 'open' ? 'Open signals' : 'All signals',
        className: 'signals',
        columns: [
          { label: 'Ticker', header: true, cell: (s) => h('span', { class: 'ticker' }, s.ticker, s.kind === 'exit' ? h('span', { class: 'kind' }, ' exit') : null) },
          { label: 'Strategy', cell: (s) => plain(s.strategy) },
          { label: 'Signal date', cell: (s) => plain(s.signal_date) },
          { label: 'Entry date', cell: (s) => h('span', null, plain(s.entry_date), s.expires_at ? h('span', { class: 'sub' }, 'closes ', closesAt(s)) : null) },
          { label: 'Ref. close', className: 'num', cell: (s) => money(s.ref_close) },
          { label: 'Last', className: 'num live-col', cell: (s) => feed.view(s.ticker, s.ref_close) },
          { label: 'RSI(2)', className: 'num', cell: (s) => plain(s.rsi2) },
          { label: '2-day return', className: 'num', cell: (s) => fractionPercent(s.return_2d) },
          { label: 'Entry mode', cell: (s) => entryModeLabel(s.entry_mode) },
          { label: 'Limit', className: 'num', cell: (s) => (s.limit_price ? money(s.limit_price) : '—') },
          { label: 'My status', className: 'status-col', cell: statusCell },
          { label: 'Action', className: 'action-col', cell: actionCell },
        ],
        rows: items.map((s) => ({ data: s, attrs: { 'data-signal-id': s.id, 'data-ticker': s.ticker } })),
        empty: scope === 'open' ? 'No open signals right now. New signals appear here after the market closes on trading days.' : 'No signals yet.',
      }));
    }

    function updateRow(sig) {
      const row = region.querySelector(`tr[data-signal-id="${CSS.escape(sig.id)}"]`);
      if (!row) return;
      replace(row.querySelector('.status-col'), statusCell(sig));
      const act = row.querySelector('.action-col');
      const hadFocus = act.contains(document.activeElement);
      replace(act, actionCell(sig));
      if (hadFocus) act.querySelector('button, a')?.focus();
    }

    function schedule() {
      clearTimeout(timer);
      if (stopped) return;
      if (current.some((s) => s.my_confirmation && pendingStatus(s.my_confirmation.status))) {
        timer = setTimeout(() => load(false), POLL_MS);
      }
    }

    async function load(full) {
      let data;
      try {
        data = await get(`/signals${query({ status: scope })}`);
      } catch (err) {
        if (stopped) return;
        if (full || !current.length) {
          replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
        }
        timer = setTimeout(() => load(false), POLL_MS * 3);
        return;
      }
      if (stopped) return;
      const items = data.items || [];
      const sameRows = !full && items.length === current.length && items.every((s, i) => s.id === current[i].id);
      if (!sameRows || !region.querySelector('table')) {
        renderTable(items);
      } else {
        items.forEach((s, i) => {
          const before = current[i].my_confirmation;
          const after = s.my_confirmation;
          if (JSON.stringify(before) !== JSON.stringify(after)) {
            current[i] = s;
            updateRow(s);
            if (after && (!before || before.status !== after.status)) {
              announce(`${s.ticker}: ${statusLabel(after.status)}`);
              refreshHeld();
              const shown = flash.querySelector(`[data-confirmation-id="${CSS.escape(after.id)}"] .badge`);
              if (shown) shown.replaceWith(badge(after.status));
            }
          }
        });
      }
      schedule();
    }
    await load(true);
    if (!stopped) held.load();
  },
};

