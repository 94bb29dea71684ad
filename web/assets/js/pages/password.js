// Settings → Password: change the sign-in password. Two-step sign-in stays
// as it is; every other session of the account is signed out.
import { h, replace, announce } from '../dom.js';
import { call } from '../api.js';
import { field, formAlert, showProblem, clearErrors, busy } from '../forms.js';

/** page is Settings → Password. */
export const page = {
  title: 'Password',
  render(main) {
    const current = field({ label: 'Current password', name: 'current_password', type: 'password', autocomplete: 'current-password' });
    const next = field({ label: 'New password', name: 'new_password', type: 'password', autocomplete: 'new-password',
      help: 'At least 8 characters. A few unrelated words are easy to remember and hard to guess.' });
    const again = field({ label: 'New password, again', name: 'new_password_again', type: 'password', autocomplete: 'new-password' });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Change password');
    const saved = h('p', { class: 'saved-msg', role: 'status' });
    const form = h('form', { class: 'stack card narrow', novalidate: true },
      formAlert(), current, next, again, h('div', { class: 'actions' }, submit, saved));
    const value = (f) => f.querySelector('input').value;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Changing…', async () => {
        clearErrors(form);
        saved.textContent = '';
        const errors = [];
        if (!value(current)) errors.push({ field: 'current_password', message: 'Enter your current password.' });
        // The length rule is the server's (it answers at new_password);
        // only the repeat is the page's own.
        if (value(again) !== value(next)) errors.push({ field: 'new_password_again', message: 'Does not match the new password.' });
        if (errors.length) {
          showProblem(form, { errors });
          return;
        }
        try {
          await call('POST', '/me/password', { current_password: value(current), new_password: value(next) });
          form.querySelectorAll('input').forEach((i) => { i.value = ''; });
          saved.textContent = 'Password changed. Your other sessions were signed out.';
          announce('Password changed.');
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Password')),
      h('p', { class: 'lead' }, 'Change the password you sign in with. Your authenticator app stays as it is.'),
      form);
  },
};
