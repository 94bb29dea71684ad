// Admin → Publish: publish a signal, and withdraw open ones.
import {
  h, replace, money, plain, entryModeLabel, table, announce, percentToFraction, EXCHANGE_TZ, exchangeTime,
} from '../dom.js';
import { get, call } from '../api.js';
import { field, radios, formAlert, showProblem, clearErrors, values, busy } from '../forms.js';

const STRATEGIES = ['I', 'II', 'III', 'IV', 'V', 'VI', 'VII', 'VIII', 'IX'];

function isoDate(d) {
  return d.toISOString().slice(0, 10);
}

function nextWeekday(d) {
  const n = new Date(d);
  do n.setUTCDate(n.getUTCDate() + 1); while (n.getUTCDay() === 0 || n.getUTCDay() === 6);
  return n;
}

// The auction cut-offs in New York time: opening-auction orders must reach
// IBKR by 09:28, closing-auction orders by 15:50 (the server's defaults,
// internal/market). GET /market/clock reports the configured ones; until
// every server has it, the form uses these.
const CUTOFFS = { open: [9, 28], close: [15, 50] };

/** nyOffsetMinutes is New York's offset from UTC at the instant ms. */
function nyOffsetMinutes(ms) {
  const part = new Intl.DateTimeFormat('en-US', { timeZone: EXCHANGE_TZ, timeZoneName: 'shortOffset' })
    .formatToParts(new Date(ms)).find((x) => x.type === 'timeZoneName');
  const m = /GMT([+-])(\d{1,2})(?::(\d{2}))?/.exec(part ? part.value : '');
  if (!m) return -300;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] || 0));
}

/**
 * nyLocalToISO turns a datetime-local value read as New York time
 * ("2026-12-03T09:28") into an RFC 3339 UTC time, or '' when it is not one.
 */
export function nyLocalToISO(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v || '');
  if (!m) return '';
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  // The offset at the wall time read as UTC is at most a few hours off;
  // the offset at the first guess is right except across a DST change.
  let at = wall - nyOffsetMinutes(wall) * 60000;
  at = wall - nyOffsetMinutes(at) * 60000;
  return new Date(at).toISOString().replace('.000Z', 'Z');
}

/**
 * defaultCutoff is the value for "Confirmations close at": the auction
 * cut-off on the entry date for the entry mode, in New York time.
 */
function defaultCutoff(entryDate, mode) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(entryDate || '')) return '';
  const [hh, mm] = mode === 'signal_close' ? CUTOFFS.close : CUTOFFS.open;
  return `${entryDate}T${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}`;
}

/** page publishes signals. */
export const page = {
  title: 'Publish a signal',
  async render(main) {
    // Today is the exchange's day, not UTC's.
    const today = new Date(`${exchangeTime(new Date()).day}T12:00:00Z`);
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Publish signal');
    const done = h('p', { class: 'saved-msg', role: 'status' });
    const limitField = field({ label: 'Limit price', name: 'limit_price', inputmode: 'decimal', help: 'Only for limit on open: the order is cancelled if the open is above it.', autocomplete: 'off', className: 'entry-only' });
    const form = h('form', { class: 'stack', novalidate: true },
      formAlert(),
      h('div', { class: 'grid-3' },
        field({ label: 'Ticker', name: 'ticker', required: true, autocomplete: 'off', spellcheck: false, help: 'A NASDAQ-100 symbol, e.g. AAPL.', attrs: { class: 'ticker-input' } }),
        field({ label: 'Strategy', name: 'strategy', type: 'select', value: 'I', options: STRATEGIES.map((s) => ({ value: s, label: s })) }),
        radios({ legend: 'Kind', name: 'kind', value: 'entry', options: [{ value: 'entry', label: 'Entry (buy)' }, { value: 'exit', label: 'Exit (sell)' }] })),
      h('div', { class: 'grid-3' },
        field({ label: 'Signal date', name: 'signal_date', type: 'date', value: isoDate(today), required: true }),
        field({ label: 'Entry date', name: 'entry_date', type: 'date', value: isoDate(nextWeekday(today)), required: true, className: 'entry-only' }),
        field({ label: 'Confirmations close at (New York time)', name: 'expires_at', type: 'datetime-local', required: true, help: 'The auction cut-off on the entry date: 09:28 for the open, 15:50 for the close.' })),
      h('div', { class: 'grid-3' },
        field({ label: 'Reference close', name: 'ref_close', inputmode: 'decimal', required: true, autocomplete: 'off', help: 'Dollars, e.g. 187.25.' }),
        field({ label: 'RSI(2)', name: 'rsi2', inputmode: 'decimal', required: true, autocomplete: 'off', help: '0 to 100, e.g. 4.8.' }),
        field({ label: '2-day return (%)', name: 'return_2d', inputmode: 'decimal', required: true, autocomplete: 'off', help: 'In percent, e.g. -3.45.' })),
      h('div', { class: 'grid-3' },
        field({
          label: 'Entry mode', name: 'entry_mode', type: 'select', value: 'next_open_market', className: 'entry-only',
          options: ['next_open_market', 'next_open_limit', 'signal_close'].map((m) => ({ value: m, label: entryModeLabel(m) })),
        }),
        limitField),
      h('div', { class: 'actions' }, submit, done));
    const modeSel = form.querySelector('[name=entry_mode]');
    const limitInput = limitField.querySelector('input');
    const syncLimit = () => {
      const on = modeSel.value === 'next_open_limit';
      limitInput.disabled = !on;
      if (!on) limitInput.value = '';
    };
    modeSel.addEventListener('change', syncLimit);
    syncLimit();

    // "Confirmations close at" follows the entry date and mode until the
    // admin sets it by hand.
    const expiresInput = form.elements.expires_at;
    const entryInput = form.elements.entry_date;
    const signalInput = form.elements.signal_date;
    let expiresTouched = false;
    const isExit = () => form.querySelector('[name=kind]:checked').value === 'exit';
    const syncCutoff = () => {
      if (!expiresTouched) expiresInput.value = defaultCutoff(entryInput.value, isExit() ? 'next_open_market' : modeSel.value);
    };
    expiresInput.addEventListener('input', () => { expiresTouched = expiresInput.value !== ''; });
    entryInput.addEventListener('change', syncCutoff);
    modeSel.addEventListener('change', syncCutoff);
    // An exit sells at the next open: its entry date follows the signal
    // date, and entry mode and limit do not apply.
    signalInput.addEventListener('change', () => {
      if (isExit() && /^\d{4}-\d{2}-\d{2}$/.test(signalInput.value)) {
        entryInput.value = isoDate(nextWeekday(new Date(`${signalInput.value}T12:00:00Z`)));
        syncCutoff();
      }
    });
    const syncKind = () => {
      const exit = isExit();
      for (const el of form.querySelectorAll('.entry-only')) el.hidden = exit;
      if (exit && /^\d{4}-\d{2}-\d{2}$/.test(signalInput.value)) {
        entryInput.value = isoDate(nextWeekday(new Date(`${signalInput.value}T12:00:00Z`)));
      }
      syncCutoff();
    };
    for (const r of form.querySelectorAll('[name=kind]')) r.addEventListener('change', syncKind);
    syncKind();

    const listRegion = h('div');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Publishing…', async () => {
        clearErrors(form);
        done.textContent = '';
        const v = values(form);
        const exit = v.kind === 'exit';
        if (exit) v.entry_mode = 'next_open_market';
        const body = {
          ticker: (v.ticker || '').toUpperCase(),
          strategy: v.strategy,
          kind: v.kind,
          signal_date: v.signal_date,
          entry_date: v.entry_date,
          ref_close: v.ref_close,
          rsi2: v.rsi2,
          return_2d: percentToFraction(v.return_2d),
          entry_mode: v.entry_mode,
          // Always well-formed JSON: an empty time is null, which the
          // server reports at its field.
          expires_at: v.expires_at ? (nyLocalToISO(v.expires_at) || v.expires_at) : null,
        };
        if (v.entry_mode === 'next_open_limit') body.limit_price = v.limit_price;
        const shown = { entry_date: exit ? 'signal_date' : 'entry_date' };
        try {
          await call('POST', '/signals', body);
          done.textContent = `Published ${body.ticker}.`;
          announce(`Published ${body.ticker}.`);
          for (const n of ['ticker', 'ref_close', 'rsi2', 'return_2d', 'limit_price']) form.elements[n].value = '';
          await loadList();
        } catch (err) {
          showProblem(form, err, shown);
        }
      });
    });

    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Publish a signal')),
      h('p', { class: 'lead' }, 'Subscribers see a published signal at once on their Signals page and can confirm it until it closes.'),
      h('section', { class: 'card' }, form),
      h('h2', null, 'Open signals'),
      listRegion);

    async function withdraw(sig, btn) {
      await busy(btn, 'Withdrawing…', async () => {
        try {
          await call('DELETE', `/signals/${encodeURIComponent(sig.id)}`);
          announce(`Withdrew ${sig.ticker}.`);
          await loadList();
        } catch (err) {
          listRegion.prepend(h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
        }
      });
    }

    async function loadList() {
      try {
        const data = await get('/signals?status=open');
        replace(listRegion, table({
          caption: 'Open signals',
          hideCaption: true,
          columns: [
            { label: 'Ticker', header: true, cell: (s) => s.ticker },
            { label: 'Strategy', cell: (s) => plain(s.strategy) },
            { label: 'Kind', cell: (s) => plain(s.kind) },
            { label: 'Entry date', cell: (s) => plain(s.entry_date) },
            { label: 'Entry mode', cell: (s) => entryModeLabel(s.entry_mode) },
            { label: 'Ref. close', className: 'num', cell: (s) => money(s.ref_close) },
            { label: 'Limit', className: 'num', cell: (s) => (s.limit_price ? money(s.limit_price) : '—') },
            { label: 'Action', cell: (s) => h('button', { type: 'button', class: 'btn btn-danger', 'aria-label': `Withdraw ${s.ticker} ${s.strategy}`, onclick: (e) => withdraw(s, e.currentTarget) }, 'Withdraw') },
          ],
          rows: (data.items || []).map((s) => ({ data: s })),
          empty: 'No open signals.',
        }));
      } catch (err) {
        replace(listRegion, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      }
    }
    await loadList();
  },
};
