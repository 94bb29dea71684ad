// My confirmations: every order the user confirmed, newest first, and one
// confirmation's status history.
import {
  h, replace, adviceLine, badge, money, plain, dateTime, pendingStatus, statusLabel, table, orderWords, brokerStatusLabel, sentence,
} from '../dom.js';
import { get, call, query } from '../api.js';
import { formAlert, showProblem, busy } from '../forms.js';
import { ask } from '../ask.js';

const STATUSES = ['pending', 'submitted', 'filled', 'partially_filled', 'cancelled', 'failed', 'unknown'];

/** statusSelect builds the status filter shared with the admin log. */
export function statusSelect(id, value) {
  return h('select', { id, name: 'status' },
    h('option', { value: '' }, 'Any status'),
    STATUSES.map((s) => h('option', { value: s, selected: s === value }, statusLabel(s))));
}

/** orderSummary describes an order in one line: "Buy 10 AAPL · Limit at the open @ $187.25". */
export function orderSummary(c) {
  const side = c.side === 'SELL' ? 'Sell' : 'Buy';
  const parts = [`${side} ${plain(c.quantity)} ${c.ticker || ''}`.trim(), orderWords(c.order_type, c.tif)];
  let s = parts.filter(Boolean).join(' · ');
  if (c.limit_price) s += ` @ ${money(c.limit_price)}`;
  return s;
}

/** list is the My confirmations page. */
export const list = {
  title: 'My confirmations',
  async render(main, ctx) {
    const status = ctx.query.get('status') || '';
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    const sel = statusSelect('conf-status', status);
    const filter = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter confirmations' },
      h('div', { class: 'field' }, h('label', { for: 'conf-status' }, 'Status'), sel),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn' }, 'Filter')));
    filter.addEventListener('submit', (e) => {
      e.preventDefault();
      ctx.navigate(`/confirmations${query({ status: sel.value })}`);
    });
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'My confirmations')),
      h('p', { class: 'lead' }, 'Every order you confirmed, newest first. Open one to see its status history.'),
      filter, region);

    let items = [];
    async function load(cursor) {
      try {
        const data = await get(`/confirmations${query({ status, cursor, limit: 50 })}`);
        items = items.concat(data.items || []);
        replace(region, table({
          caption: 'Confirmations',
          columns: [
            { label: 'Confirmed', cell: (c) => dateTime(c.created_at) },
            { label: 'Ticker', header: true, cell: (c) => h('a', { href: `/confirmations/${encodeURIComponent(c.id)}` }, c.ticker) },
            { label: 'Side', cell: (c) => (c.side === 'SELL' ? 'Sell' : 'Buy') },
            { label: 'Quantity', className: 'num', cell: (c) => plain(c.quantity) },
            { label: 'Order', cell: (c) => orderWords(c.order_type, c.tif) + (c.limit_price ? ` @ ${money(c.limit_price)}` : '') },
            { label: 'Mode', cell: (c) => (c.mode === 'live' ? 'Live' : 'Paper') },
            { label: 'Status', cell: (c) => h('div', null, badge(c.status), c.error && c.error.message ? h('p', { class: 'status-error' }, sentence(c.error.message)) : null, adviceLine(c.error && c.error.advice)) },
            { label: 'Filled', className: 'num', cell: (c) => (c.filled_quantity && c.filled_quantity !== '0' ? `${c.filled_quantity} @ ${money(c.avg_fill_price)}` : '—') },
          ],
          rows: items.map((c) => ({ data: c, attrs: { 'data-confirmation-id': c.id } })),
          // A filter with no rows is not a new account: say which it is.
          empty: status
            ? h('span', null, `No confirmations with status “${statusLabel(status)}”. `, h('a', { href: '/confirmations' }, 'Show all statuses'))
            : 'No confirmations yet. Confirm a signal on the Signals page.',
        }), data.next_cursor ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', onclick: () => load(data.next_cursor) }, 'Show more')) : null);
      } catch (err) {
        replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      }
    }
    await load('');
  },
};

/** detail is one of the user's confirmations with its status history. */
export const detail = detailPage({ api: '/confirmations', back: '/confirmations', backText: '← My confirmations', own: true });

/** adminDetail is any user's confirmation, opened from the admin log. */
export const adminDetail = detailPage({ api: '/admin/confirmations', back: '/admin/confirmations', backText: '← Confirmation log', own: false });

/**
 * detailPage builds a confirmation page reading from api; only the owner
 * (own) is offered Cancel order.
 */
function detailPage({ api, back, backText, own }) {
  return {
    title: 'Confirmation',
    async render(main, ctx) {
      const id = ctx.params.id;
      let timer = null;
      let stopped = false;
      ctx.setCleanup(() => { stopped = true; clearTimeout(timer); });
      // After a cancel, IBKR takes a moment to report the order cancelled:
      // until then the badge says so rather than the old status.
      let cancelling = false;
      const shownBadge = (c) => {
        if (cancelling && pendingStatus(c.status)) return badge('cancelling');
        return badge(c.status);
      };
      const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
      replace(main, h('p', { class: 'breadcrumb' }, h('a', { href: back }, backText)),
        h('h1', null, 'Confirmation'), region);

      async function load() {
        let c;
        try {
          c = await get(`${api}/${encodeURIComponent(id)}`);
        } catch (err) {
          if (!stopped) replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.status === 404 ? `There is no confirmation with this id${own ? ' in your account' : ''}.` : (err.detail || err.message)));
          return;
        }
        if (stopped) return;
        main.querySelector('h1').textContent = `${c.side === 'SELL' ? 'Sell' : 'Buy'} ${c.ticker}`;
        const cancelAlert = formAlert();
        const cancellable = own && !cancelling && (c.status === 'pending' || c.status === 'submitted');
        const cancelBtn = cancellable ? h('button', { type: 'button', class: 'btn btn-danger' }, 'Cancel order') : null;
        if (cancelBtn) {
          cancelBtn.addEventListener('click', async () => {
            const sure = await ask({
              title: `Cancel your ${c.side === 'SELL' ? 'sell' : 'buy'} order for ${c.ticker}?`,
              text: 'Ordertune asks IBKR to cancel it. Shares already filled stay bought or sold.',
              yes: 'Cancel order', no: 'Keep the order', opener: cancelBtn,
            });
            if (!sure) return;
            await busy(cancelBtn, 'Cancelling…', async () => {
              try {
                await call('POST', `/confirmations/${encodeURIComponent(id)}/cancel`);
                cancelling = true;
                await load();
              } catch (err) {
                showProblem(region, err);
              }
            });
          });
        }
        const events = c.events || [];
        replace(region,
          h('div', { class: 'card' },
            h('div', { class: 'status-line' }, shownBadge(c), c.error && c.error.message ? h('p', { class: 'status-error' }, c.error.advice ? 'IBKR said: ' : '', sentence(c.error.message)) : null),
            adviceLine(c.error && c.error.advice),
            h('dl', { class: 'facts' },
              h('div', null, h('dt', null, 'Order'), h('dd', null, orderSummary(c))),
              own ? null : h('div', null, h('dt', null, 'User'), h('dd', { class: 'mono small' }, plain(c.user_id))),
              h('div', null, h('dt', null, 'Mode'), h('dd', null, c.mode === 'live' ? 'Live' : 'Paper')),
              h('div', null, h('dt', null, 'Filled'), h('dd', null, c.filled_quantity && c.filled_quantity !== '0' ? `${c.filled_quantity} @ ${money(c.avg_fill_price)}` : '—')),
              h('div', { 'data-fact': 'commission' }, h('dt', null, 'Commission'), h('dd', null, c.commission == null ? '—' : money(c.commission))),
              c.side === 'BUY' && c.closed ? h('div', { 'data-fact': 'closed' }, h('dt', null, 'Position'), h('dd', null, 'Closed: its exits sold it all')) : null,
              h('div', null, h('dt', null, 'IBKR order id'), h('dd', { class: 'mono' }, plain(c.broker_order_id))),
              h('div', null, h('dt', null, 'IBKR status'), h('dd', null, brokerStatusLabel(c.broker_status))),
              h('div', null, h('dt', null, 'Client order id'), h('dd', { class: 'mono small' }, c.id)),
              h('div', null, h('dt', null, 'Confirmed'), h('dd', null, dateTime(c.created_at))),
              h('div', null, h('dt', null, 'Updated'), h('dd', null, dateTime(c.updated_at)))),
            cancelAlert,
            cancelBtn ? h('div', { class: 'actions' }, cancelBtn) : null),
          h('h2', null, 'Executions'),
          executionsTable(c.executions || []),
          h('h2', null, 'Status history'),
          events.length ? h('ol', { class: 'timeline' }, events.map((ev) => h('li', null,
            h('div', { class: 'timeline-head' }, badge(ev.status), ' ', dateTime(ev.at || ev.created_at || ev.occurred_at)),
            ev.message || ev.detail || (ev.error && ev.error.message) ? h('p', null, sentence(ev.message || ev.detail || ev.error.message)) : null,
            questionLines(ev.question))))
            : h('p', { class: 'muted' }, 'No status changes recorded yet.'));
        if (pendingStatus(c.status)) timer = setTimeout(load, 2000);
      }
      await load();
    },
  };
}

/** executionsTable lists the fills IBKR reported for the order, oldest
 * first, each at New York time with its commission. */
function executionsTable(execs) {
  return table({
    caption: 'Executions of this order',
    hideCaption: true,
    className: 'executions',
    columns: [
      { label: 'Executed', header: true, cell: (e) => dateTime(e.executed_at) },
      { label: 'Shares', className: 'num', cell: (e) => plain(e.quantity) },
      { label: 'Price', className: 'num', cell: (e) => money(e.price) },
      { label: 'Commission', className: 'num', cell: (e) => (e.commission == null ? 'not yet reported' : money(e.commission)) },
    ],
    rows: execs.map((e) => ({ data: e, attrs: { 'data-execution-id': e.id } })),
    empty: 'No executions yet: IBKR lists them once the order fills.',
  });
}

/** questionLines shows a reply question IBKR asked before taking the
 * order, and Ordertune's answer, in a status-history entry. */
function questionLines(q) {
  if (!q) return null;
  const answer = q.answer === 'confirmed' ? 'Ordertune answered yes' : 'Ordertune answered no: the order was not placed';
  return h('div', { class: 'question', 'data-question': (q.message_ids || []).join(',') },
    h('p', null, h('strong', null, `IBKR asked (${(q.message_ids || []).join(', ')}): `), q.text),
    h('p', { class: 'small muted' }, `${answer} — ${q.reason}.`));
}
