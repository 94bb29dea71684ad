// Admin → Users: create accounts, disable or re-enable them, reset a
// user's two-step sign-in.
import { h, replace, badge, dateTime, table, announce } from '../dom.js';
import { get, call } from '../api.js';
import { ask } from '../ask.js';
import { field, formAlert, showProblem, clearErrors, values, busy } from '../forms.js';

/** page is the admin user list. */
export const page = {
  title: 'Users',
  async render(main, ctx) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create user');
    const created = h('p', { class: 'saved-msg', role: 'status' });
    const form = h('form', { class: 'stack', novalidate: true, 'aria-labelledby': 'new-user-h' },
      formAlert(),
      h('div', { class: 'grid-3' },
        field({ label: 'E-mail', name: 'email', type: 'email', autocomplete: 'off', required: true, spellcheck: false }),
        field({ label: 'Role', name: 'role', type: 'select', value: 'subscriber', options: [{ value: 'subscriber', label: 'Subscriber' }, { value: 'admin', label: 'Admin' }] }),
        field({ label: 'Initial password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, help: '8 to 128 characters. They set up two-step sign-in when they first sign in.' })),
      h('div', { class: 'actions' }, submit, created));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Creating…', async () => {
        clearErrors(form);
        created.textContent = '';
        const v = values(form);
        try {
          await call('POST', '/admin/users', { email: v.email, role: v.role, password: v.password });
          form.reset();
          created.textContent = `Created ${v.email}.`;
          await load();
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Users')),
      region,
      h('section', { class: 'card', 'aria-labelledby': 'new-user-h' }, h('h2', { id: 'new-user-h' }, 'Add a user'), form));

    async function toggle(u, btn) {
      await busy(btn, u.disabled ? 'Enabling…' : 'Disabling…', async () => {
        try {
          await call('PATCH', `/admin/users/${encodeURIComponent(u.id)}`, { disabled: !u.disabled });
          announce(`${u.email} ${u.disabled ? 'enabled' : 'disabled'}.`);
          await load();
          region.querySelector(`tr[data-user-id="${CSS.escape(u.id)}"] button`)?.focus();
        } catch (err) {
          replace(region.querySelector('.region-alert'), err.detail || err.message);
        }
      });
    }

    // replyQuestions shows and changes the user's reply-question allowlist:
    // the platform's default, every question surfaced, or a list of their own.
    async function replyQuestions(u, opener) {
      const path = `/admin/users/${encodeURIComponent(u.id)}/reply-questions`;
      let qs;
      try {
        qs = await get(path);
      } catch (err) {
        replace(region.querySelector('.region-alert'), err.detail || err.message);
        return;
      }
      const kind = qs.override == null ? 'default' : (qs.override.length ? 'own' : 'all');
      const radio = (value, label) => h('div', { class: 'choice' },
        h('input', { type: 'radio', name: 'rq', id: `rq-${value}`, value, checked: kind === value }),
        h('label', { for: `rq-${value}` }, label));
      const own = h('input', { type: 'text', id: 'rq-list', class: 'mono', value: (qs.override || []).join(', '), spellcheck: false });
      const alert = formAlert();
      const save = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
      const close = h('button', { type: 'button', class: 'btn' }, 'Close');
      const form = h('form', { class: 'stack', novalidate: true },
        h('p', null, 'IBKR asks questions before taking some orders. Ordertune confirms those on the allowlist; any other question fails the confirmation with IBKR\'s text. Every question and answer is in the order\'s history.'),
        h('p', { class: 'small' }, 'Platform default: ', h('span', { class: 'mono' }, qs.platform_default.join(', ') || 'none')),
        h('p', { class: 'small', 'data-effective': '' }, 'In force for this user: ', h('span', { class: 'mono' }, qs.effective.join(', ') || 'none (every question surfaced)')),
        alert,
        h('fieldset', { class: 'stack' }, h('legend', null, 'Allowlist'),
          radio('default', 'The platform default'),
          radio('all', 'Surface every question (any question fails the order)'),
          radio('own', 'A list of their own:'),
          h('label', { for: 'rq-list', class: 'small muted' }, 'Message ids, comma-separated (e.g. o163, o354)'), own),
        h('div', { class: 'actions dialog-actions' }, save, close));
      const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'rq-h' }, h('h2', { id: 'rq-h' }, `Reply questions of ${u.email}`), form);
      document.body.append(dlg);
      dlg.addEventListener('close', () => { dlg.remove(); if (opener.isConnected) opener.focus(); });
      close.addEventListener('click', () => dlg.close());
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        busy(save, 'Saving…', async () => {
          clearErrors(form);
          const choice = form.querySelector('input[name=rq]:checked').value;
          try {
            if (choice === 'default') await call('DELETE', path);
            else await call('PUT', path, { allowed: choice === 'all' ? [] : own.value.split(',').map((s) => s.trim()).filter(Boolean) });
            announce(`Reply questions of ${u.email} saved.`);
            dlg.close();
          } catch (err) {
            showProblem(form, err);
          }
        });
      });
      dlg.showModal();
    }

    // A user who lost their authenticator and recovery codes: their 2FA
    // goes, their sessions end, and their next sign-in enrols again.
    async function resetTOTP(u, btn) {
      const sure = await ask({
        title: `Reset two-step sign-in for ${u.email}?`,
        text: 'Their authenticator and recovery codes stop working and they are signed out everywhere. At their next sign-in with their password they set up two-step sign-in again. Do this only when you know the request comes from them.',
        yes: 'Reset two-step sign-in',
        no: 'Keep it',
        opener: btn,
      });
      if (!sure) return;
      await busy(btn, 'Resetting…', async () => {
        try {
          await call('POST', `/admin/users/${encodeURIComponent(u.id)}/totp/reset`);
          await load();
          const msg = `Two-step sign-in reset for ${u.email}: they set it up again at their next sign-in.`;
          replace(region.querySelector('.region-status'), msg);
          announce(msg);
          region.querySelector(`tr[data-user-id="${CSS.escape(u.id)}"] button`)?.focus();
        } catch (err) {
          replace(region.querySelector('.region-alert'), err.detail || err.message);
        }
      });
    }

    async function load() {
      try {
        const data = await get('/admin/users');
        const items = data.items || [];
        replace(region, h('p', { class: 'region-alert notice-bad', role: 'alert' }), h('p', { class: 'region-status saved-msg', role: 'status' }), table({
          caption: 'All users',
          columns: [
            { label: 'E-mail', header: true, cell: (u) => u.email },
            { label: 'Role', cell: (u) => (u.role === 'admin' ? 'Admin' : 'Subscriber') },
            { label: '2FA', cell: (u) => (u.totp_enabled ? 'On' : 'Not set up') },
            { label: 'State', cell: (u) => (u.disabled ? badge('failed', 'Disabled') : u.locked ? badge('pending_activation', 'Locked') : badge('connected', 'Active')) },
            { label: 'Created', cell: (u) => dateTime(u.created_at) },
            {
              label: 'IBKR questions',
              cell: (u) => h('button', {
                type: 'button', class: 'btn btn-quiet', 'aria-label': `Reply questions of ${u.email}`, 'data-action': 'reply-questions',
                onclick: (e) => replyQuestions(u, e.currentTarget),
              }, 'Questions…'),
            },
            {
              label: 'Action',
              cell: (u) => (ctx.user && u.id === ctx.user.id ? h('span', { class: 'muted small' }, 'You') : h('div', { class: 'row-actions' },
                h('button', {
                  type: 'button', class: `btn ${u.disabled ? '' : 'btn-danger'}`, 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}`,
                  'data-action': 'toggle', onclick: (e) => toggle(u, e.currentTarget),
                }, u.disabled ? 'Enable' : 'Disable'),
                u.totp_enabled ? h('button', {
                  type: 'button', class: 'btn', 'aria-label': `Reset 2FA for ${u.email}`,
                  'data-action': 'reset-2fa', onclick: (e) => resetTOTP(u, e.currentTarget),
                }, 'Reset 2FA') : null)),
            },
          ],
          rows: items.map((u) => ({ data: u, attrs: { 'data-user-id': u.id } })),
        }));
      } catch (err) {
        replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      }
    }
    await load();
  },
};
