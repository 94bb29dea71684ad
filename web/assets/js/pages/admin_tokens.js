// Admin → Tokens: API tokens for programs (a signal feed publishing with
// signals:write). A token is shown once, when it is made; afterwards only
// its name and use are listed, and it can be revoked.
import { h, replace, announce, dateTime, plain, table, badge } from '../dom.js';
import { get, call, send } from '../api.js';
import { field, formAlert, showProblem, clearErrors, busy } from '../forms.js';
import { ask } from '../ask.js';

const SCOPES = [{ value: 'signals:write', label: 'Publish signals (signals:write)' }];

/** page lists, creates and revokes API tokens. */
export const page = {
  title: 'API tokens',
  async render(main) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    const shown = h('div', { 'aria-live': 'polite' });
    const name = field({ label: 'Name', name: 'name', autocomplete: 'off', help: 'What uses it, e.g. "signal feed".' });
    const scopes = h('fieldset', { class: 'field', 'data-field': 'scopes' },
      h('legend', null, 'Allowed to'),
      SCOPES.map((s) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: 'scopes', value: s.value, checked: true }), ' ', s.label)),
      h('p', { class: 'field-error', hidden: true }));
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
    const form = h('form', { class: 'stack card narrow', novalidate: true }, formAlert(), name, scopes, h('div', { class: 'actions' }, submit));
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'API tokens')),
      h('p', { class: 'lead' }, 'Programs authenticate with a token instead of a password and 2FA: send it as "Authorization: Bearer <token>".'),
      form, shown, h('h2', null, 'Tokens'), region);

    async function load() {
      let data;
      try {
        data = await get('/admin/tokens');
      } catch (err) {
        replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
        return;
      }
      replace(region, table({
        caption: 'API tokens',
        hideCaption: true,
        columns: [
          { label: 'Name', header: true, cell: (t) => plain(t.name) },
          { label: 'Allowed to', cell: (t) => (t.scopes || []).join(', ') },
          { label: 'Created', cell: (t) => dateTime(t.created_at) },
          { label: 'Last used', cell: (t) => (t.last_used_at ? dateTime(t.last_used_at) : 'Never') },
          { label: 'Status', cell: (t) => (t.revoked_at ? badge('cancelled', 'Revoked') : badge('connected', 'Active')) },
          {
            label: 'Action',
            cell: (t) => {
              if (t.revoked_at) return '';
              const btn = h('button', { type: 'button', class: 'btn btn-danger', 'aria-label': `Revoke ${t.name}` }, 'Revoke');
              btn.addEventListener('click', async () => {
                const sure = await ask({
                  title: `Revoke the token “${t.name}”?`,
                  text: 'Programs using it are refused from now on. This cannot be undone; a new token can be created.',
                  yes: 'Revoke token', no: 'Keep it', opener: btn,
                });
                if (sure) await revoke(t, btn);
              });
              return btn;
            },
          },
        ],
        rows: (data.items || []).map((t) => ({ data: t, attrs: { 'data-token-id': t.id } })),
        empty: 'No API tokens yet.',
      }));
    }

    function revoke(t, btn) {
      return busy(btn, 'Revoking…', async () => {
        try {
          await call('DELETE', `/admin/tokens/${encodeURIComponent(t.id)}`);
          announce(`Token ${t.name} revoked.`);
          await load();
        } catch (err) {
          showProblem(form, err);
        }
      });
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Creating…', async () => {
        clearErrors(form);
        replace(shown);
        const chosen = [...form.querySelectorAll('input[name=scopes]:checked')].map((i) => i.value);
        try {
          const t = await send('POST', '/admin/tokens', { name: name.querySelector('input').value.trim(), scopes: chosen });
          name.querySelector('input').value = '';
          replace(shown, h('div', { class: 'notice token-once', role: 'status' },
            h('p', null, `Token "${t.name}" created. Copy it now: it is not shown again.`),
            h('p', null, h('code', { class: 'mono token-value' }, t.token))));
          await load();
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    await load();
  },
};
