// "Forgot password?": ask for a reset link by e-mail, and choose a new
// password with one. The link carries its token in the URL's fragment
// (#token=…), which no server sees; this page posts it and drops it from
// the address bar and the history at once.
import { h, replace, announce } from '../dom.js';
import { call } from '../api.js';
import { field, formAlert, showProblem, clearErrors, values, busy } from '../forms.js';

/** forgot asks for a reset link. */
export const forgot = {
  title: 'Forgot password',
  render(main, ctx) {
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Send the link');
    const sent = h('p', { class: 'notice notice-info', role: 'status', hidden: true });
    const form = h('form', { class: 'stack', novalidate: true },
      formAlert(),
      field({ label: 'E-mail', name: 'email', type: 'email', autocomplete: 'username', required: true, spellcheck: false,
        value: ctx.query.get('email') || '' }),
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const v = values(form);
      if (!v.email) {
        showProblem(form, { errors: [{ field: 'email', message: 'Enter your e-mail address.' }] });
        return;
      }
      await busy(submit, 'Sending…', async () => {
        try {
          const { data } = await call('POST', '/auth/password-reset', { email: v.email }, { quietAuth: true });
          sent.textContent = data.message;
          sent.hidden = false;
          announce(data.message);
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    replace(main, h('section', { class: 'card narrow auth-card' },
      h('h1', null, 'Forgot your password?'),
      h('p', { class: 'lead' }, 'Enter the address you sign in with. We e-mail it a link to choose a new password; '
        + 'signing in afterwards still needs your authenticator app.'),
      form, sent,
      h('p', { class: 'muted small' }, h('a', { href: '/signin' }, 'Back to sign in'))));
    form.querySelector('[name=email]').focus();
  },
};

/** reset sets a new password with the token of a reset link. */
export const reset = {
  title: 'Choose a new password',
  render(main, ctx) {
    const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
    // Out of the address bar and the history: the token is a credential.
    if (location.hash) history.replaceState(null, '', location.pathname);
    const again = () => h('p', null, h('a', { href: '/forgot-password' }, 'Ask for a new link'));
    if (!token) {
      replace(main, h('section', { class: 'card narrow auth-card' },
        h('h1', null, 'Choose a new password'),
        h('p', { class: 'notice notice-bad', role: 'alert' }, 'This link is incomplete: open the whole link from the e-mail, or ask for a new one.'),
        again()));
      return;
    }
    const next = field({ label: 'New password', name: 'new_password', type: 'password', autocomplete: 'new-password', required: true,
      help: 'At least 8 characters. A few unrelated words are easy to remember and hard to guess.' });
    const repeat = field({ label: 'New password, again', name: 'new_password_again', type: 'password', autocomplete: 'new-password', required: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Set the new password');
    const form = h('form', { class: 'stack', novalidate: true }, formAlert(), next, repeat, h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const v = values(form);
      if (v.new_password_again !== v.new_password) {
        showProblem(form, { errors: [{ field: 'new_password_again', message: 'Does not match the new password.' }] });
        return;
      }
      await busy(submit, 'Saving…', async () => {
        try {
          await call('POST', '/auth/password-reset/complete', { token, new_password: v.new_password }, { quietAuth: true });
          form.querySelectorAll('input').forEach((i) => { i.value = ''; });
          ctx.signedOutHere();
          ctx.navigate('/signin?reset=done', { replace: true });
        } catch (err) {
          const bad = (err.errors || []).find((fe) => fe.field === 'token');
          if (bad) {
            showProblem(form, { detail: bad.message, errors: [] });
            form.querySelector('.form-alert').append(again());
          } else {
            showProblem(form, err);
          }
        }
      });
    });
    replace(main, h('section', { class: 'card narrow auth-card' },
      h('h1', null, 'Choose a new password'),
      h('p', { class: 'lead' }, 'Every session of your account ends when it is set. Then sign in with it and your authenticator code.'),
      form));
    form.querySelector('[name=new_password]').focus();
  },
};
