// Admin → Sessions: the health of each tenant's IBKR session.
import { h, replace, badge, dateTime, plain, table } from '../dom.js';
import { get } from '../api.js';
import { busy } from '../forms.js';

function stateBadge(s) {
  const st = String(s || '').toLowerCase();
  const tone = { ready: 'connected', active: 'connected', connected: 'connected', authenticated: 'connected', failed: 'failed', error: 'failed', expired: 'failed', pending_activation: 'pending_activation', competing: 'unknown' }[st] || 'untested';
  return badge(tone, st ? st.replace(/_/g, ' ') : 'unknown');
}

/** page is the IBKR session health table. */
export const page = {
  title: 'IBKR sessions',
  async render(main) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    const refresh = h('button', { type: 'button', class: 'btn' }, 'Refresh');
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'IBKR sessions'), refresh),
      h('p', { class: 'lead' }, 'Each tenant\'s live session with IBKR, kept in memory and renewed before it expires.'),
      region);
    async function load() {
      try {
        const [data, users] = await Promise.all([get('/admin/sessions'), get('/admin/users?limit=200').catch(() => ({ items: [] }))]);
        const items = data.items || [];
        const email = Object.fromEntries((users.items || []).map((u) => [u.id, u.email]));
        replace(region, table({
          caption: 'Sessions by tenant',
          columns: [
            { label: 'User', header: true, cell: (s) => plain(email[s.user_id] || s.user_id) },
            { label: 'Mode', cell: (s) => (s.mode === 'live' ? 'Live' : s.mode === 'paper' ? 'Paper' : '—') },
            { label: 'Account', cell: (s) => h('span', { class: 'mono' }, plain(s.account_id_masked)) },
            { label: 'State', cell: (s) => stateBadge(s.state) },
            { label: 'LST expires', cell: (s) => dateTime(s.lst_expires_at || s.lst_expiry) },
            { label: 'Last tickle', cell: (s) => dateTime(s.last_tickle_at || s.last_tickle) },
            { label: 'Competing', cell: (s) => (s.competing ? badge('failed', 'Competing session') : 'No') },
            { label: 'Last error', cell: (s) => plain(s.last_error ? String(s.last_error).replace(/_/g, ' ') : '') },
          ],
          rows: items.map((s) => ({ data: s })),
          empty: 'No tenant has an IBKR session in memory right now.',
        }));
      } catch (err) {
        replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      }
    }
    refresh.addEventListener('click', () => busy(refresh, 'Refreshing…', load));
    await load();
  },
};
