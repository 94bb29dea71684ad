// Admin → Log: every user's confirmations, filtered, with CSV export.
import {
  h, replace, adviceLine, badge, money, plain, dateTime, table, orderWords, sentence,
} from '../dom.js';
import { get, query } from '../api.js';
import { statusSelect } from './confirmations.js';
import { formAlert, showProblem, clearErrors } from '../forms.js';

const FILTERS = ['user', 'status', 'ticker', 'from', 'to'];

/** page is the admin confirmation log. */
export const page = {
  title: 'Confirmation log',
  async render(main, ctx) {
    const f = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || '']));
    const input = (name, label, attrs) => {
      const id = `log-${name}`;
      return h('div', { class: 'field', 'data-field': name }, h('label', { for: id }, label),
        h('input', { id, name, value: f[name], 'aria-describedby': `${id}-err`, ...attrs }),
        h('p', { class: 'field-error', id: `${id}-err`, hidden: true }));
    };
    const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the log', novalidate: true },
      input('user', 'User', { type: 'text', placeholder: 'part of an e-mail, or an id', autocomplete: 'off', spellcheck: 'false' }),
      h('div', { class: 'field', 'data-field': 'status' }, h('label', { for: 'log-status' }, 'Status'), statusSelect('log-status', f.status),
        h('p', { class: 'field-error', hidden: true })),
      input('ticker', 'Ticker', { type: 'text', autocomplete: 'off', spellcheck: 'false', class: 'short' }),
      input('from', 'From', { type: 'date' }),
      input('to', 'To', { type: 'date' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Apply'),
        h('a', { class: 'btn btn-quiet', href: '/admin/confirmations' }, 'Clear')));
    // The alert sits above the filter row, so a message never breaks it.
    const filterBox = h('div', { class: 'filter-box' }, formAlert(), filters);
    filters.addEventListener('submit', (e) => {
      e.preventDefault();
      const q = {};
      for (const k of FILTERS) q[k] = (filters.elements[k].value || '').trim();
      if (q.ticker) q.ticker = q.ticker.toUpperCase();
      if (q.from && q.to && q.to < q.from) {
        showProblem(filterBox, { errors: [{ field: 'to', message: 'The end date is before the start date.' }] });
        return;
      }
      ctx.navigate(`/admin/confirmations${query(q)}`);
    });
    const csvHref = `/api/v1/admin/confirmations${query({ ...f, format: 'csv' })}`;
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Confirmation log'),
        h('a', { class: 'btn', href: csvHref, download: 'ordertune-confirmations.csv', 'data-action': 'csv' }, 'Download CSV')),
      h('p', { class: 'lead' }, 'Every confirmation by every user, newest first. The CSV holds the same rows as the filters below.'),
      filterBox, region);

    let items = [];
    async function load(cursor) {
      try {
        const [data, users] = await Promise.all([
          get(`/admin/confirmations${query({ ...f, cursor, limit: 100 })}`),
          emails ? Promise.resolve(null) : get('/admin/users?limit=200').catch(() => ({ items: [] })),
        ]);
        if (users) emails = Object.fromEntries((users.items || []).map((u) => [u.id, u.email]));
        clearErrors(filterBox);
        items = items.concat(data.items || []);
        replace(region, table({
          caption: 'Confirmations',
          columns: [
            { label: 'Confirmed', cell: (c) => dateTime(c.created_at) },
            { label: 'User', cell: (c) => plain(emails[c.user_id] || c.user_id) },
            { label: 'Ticker', header: true, cell: (c) => h('a', { href: `/admin/confirmations/${encodeURIComponent(c.id)}`, 'aria-label': `${c.ticker}: open this order` }, c.ticker) },
            { label: 'Side', cell: (c) => (c.side === 'SELL' ? 'Sell' : 'Buy') },
            { label: 'Qty', className: 'num', cell: (c) => plain(c.quantity) },
            { label: 'Order', cell: (c) => orderWords(c.order_type, c.tif) + (c.limit_price ? ` @ ${money(c.limit_price)}` : '') },
            { label: 'Mode', cell: (c) => (c.mode === 'live' ? 'Live' : 'Paper') },
            { label: 'Status', cell: (c) => h('div', null, badge(c.status), c.error && c.error.message ? h('p', { class: 'status-error' }, sentence(c.error.message)) : null, adviceLine(c.error && c.error.advice)) },
            { label: 'Filled', className: 'num', cell: (c) => (c.filled_quantity && c.filled_quantity !== '0' ? `${c.filled_quantity} @ ${money(c.avg_fill_price)}` : '—') },
            { label: 'IBKR order', cell: (c) => h('span', { class: 'mono small' }, plain(c.broker_order_id)) },
          ],
          rows: items.map((c) => ({ data: c, attrs: { 'data-confirmation-id': c.id } })),
          empty: FILTERS.some((k) => f[k]) ? 'No confirmations match these filters.' : 'No confirmations yet.',
        }), data.next_cursor ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', onclick: () => load(data.next_cursor) }, 'Show more')) : null);
      } catch (err) {
        // The table keeps what it showed; the filters say what is wrong.
        if (!region.querySelector('table')) replace(region);
        showProblem(filterBox, err);
      }
    }
    let emails = null;
    await load('');
  },
};
