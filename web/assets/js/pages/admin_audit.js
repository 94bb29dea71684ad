// Admin → Audit: the hash-chained audit trail and its verification.
import { h, replace, dateTime, plain, table, badge, sentence } from '../dom.js';
import { get, query } from '../api.js';
import { busy } from '../forms.js';

function describe(v) {
  if (v == null) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** page shows the audit trail and verifies its chain. */
export const page = {
  title: 'Audit trail',
  async render(main) {
    const verifyBtn = h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'verify' }, 'Verify the chain');
    const verifyRegion = h('div', { class: 'verify-region', 'aria-live': 'polite' });
    const listRegion = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Audit trail')),
      h('p', { class: 'lead' }, 'Every sign-in, setting change, confirmation and status change, each entry chained to the one before by its hash. Verification recomputes the chain and names the first entry that does not match.'),
      h('section', { class: 'card' }, h('div', { class: 'actions' }, verifyBtn), verifyRegion),
      h('h2', null, 'Recent entries'),
      listRegion);

    verifyBtn.addEventListener('click', () => busy(verifyBtn, 'Verifying…', async () => {
      try {
        const r = await get('/admin/audit/verify');
        const ok = r.ok !== false && !r.first_bad && !r.first_bad_id;
        const extra = Object.entries(r).filter(([k]) => k !== 'ok' && !(k === 'first_bad' && r[k] == null));
        replace(verifyRegion,
          h('p', { class: 'status-line', 'data-ok': String(ok) }, ok ? badge('connected', 'Chain intact') : badge('failed', 'Chain broken'),
            ' ', ok ? 'Every entry matches its hash.' : 'An entry was changed, removed or reordered.'),
          extra.length ? h('dl', { class: 'facts' }, extra.map(([k, v]) => h('div', null,
            h('dt', null, sentence(k.replace(/_/g, ' '))),
            h('dd', null, k.endsWith('_at') ? dateTime(v) : describe(v))))) : null);
      } catch (err) {
        replace(verifyRegion, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      }
    }));

    try {
      const [data, users] = await Promise.all([get(`/admin/audit${query({ limit: 100 })}`), get('/admin/users?limit=200').catch(() => ({ items: [] }))]);
      const email = Object.fromEntries((users.items || []).map((u) => [u.id, u.email]));
      const who = (id) => (id ? email[id] || id : '—');
      replace(listRegion, table({
        caption: 'Audit entries',
        hideCaption: true,
        className: 'audit-table',
        columns: [
          { label: '#', className: 'num', cell: (e) => plain(e.seq ?? e.id) },
          { label: 'Time', cell: (e) => dateTime(e.at) },
          { label: 'Action', header: true, cell: (e) => plain(e.action) },
          { label: 'By', cell: (e) => who(e.actor_id) },
          { label: 'Account', cell: (e) => who(e.user_id) },
          { label: 'Subject', cell: (e) => h('span', { class: 'small' }, plain(e.subject)) },
          { label: 'IP', cell: (e) => h('span', { class: 'mono small' }, plain(e.ip)) },
          { label: 'Sealed', cell: (e) => (e.sealed ? 'Yes' : 'Not yet') },
        ],
        rows: (data.items || []).map((e) => ({ data: e })),
        empty: 'No audit entries yet.',
      }));
    } catch (err) {
      replace(listRegion, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
    }
  },
};
