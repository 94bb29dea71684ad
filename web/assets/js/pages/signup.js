// Sign up: a new subscriber account, when the server's sign-up is open
// (ORDERTUNE_SIGNUP=open). The server answers the same for a new and a
// registered address, so this page never says which it was.
import { h, replace } from '../dom.js';
import { call, get } from '../api.js';
import { field, formAlert, showProblem, clearErrors, values, busy } from '../forms.js';

/** signupOpen reports whether the server takes sign-ups (false when it
 * cannot tell). */
export async function signupOpen() {
  try {
    const data = await get('/auth/signup', { quietAuth: true });
    return !!(data && data.open);
  } catch {
    return false;
  }
}

/** page is the sign-up form. */
export const page = {
  title: 'Create an account',
  async render(main) {
    const open = await signupOpen();
    const card = h('section', { class: 'card narrow auth-card' },
      h('h1', { id: 'signup-h' }, 'Create an Ordertune account'));
    replace(main, card);
    if (!open) {
      card.append(
        h('p', null, 'Sign-up is closed on this server: an Ordertune admin creates accounts. Ask yours for one.'),
        h('p', null, h('a', { href: '/signin' }, 'Back to sign in')));
      return;
    }
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create account');
    const form = h('form', { class: 'stack', novalidate: true, 'aria-labelledby': 'signup-h' },
      formAlert(),
      field({ label: 'E-mail', name: 'email', type: 'email', autocomplete: 'username', required: true, spellcheck: false }),
      field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'new-password', required: true, help: '8 to 128 characters; a few unrelated words make a good one.' }),
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const v = values(form);
      const missing = [];
      if (!v.email) missing.push({ field: 'email', message: 'Enter your e-mail address.' });
      if (!v.password) missing.push({ field: 'password', message: 'Choose a password.' });
      if (missing.length) {
        showProblem(form, { errors: missing, detail: '' });
        return;
      }
      await busy(submit, 'Creating…', async () => {
        try {
          const { data } = await call('POST', '/auth/signup', { email: v.email, password: v.password }, { quietAuth: true });
          const heading = h('h2', { tabindex: '-1' }, 'Next: sign in');
          replace(card,
            h('h1', null, 'Create an Ordertune account'),
            h('div', { class: 'notice notice-ok', role: 'status' },
              heading,
              h('p', null, data && data.message ? data.message : 'Sign in with your e-mail address and password.'),
              h('p', null, 'At your first sign-in you set up two-step sign-in with an authenticator app.')),
            h('p', null, h('a', { class: 'btn btn-primary', href: '/signin', 'data-action': 'to-signin' }, 'Sign in')));
          heading.focus();
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    card.append(
      h('p', { class: 'lead' }, 'A subscriber account: confirm signals, and Ordertune places the orders in your own Interactive Brokers account.'),
      form,
      h('p', { class: 'muted small' }, 'Have an account? ', h('a', { href: '/signin' }, 'Sign in')));
    form.querySelector('[name=email]').focus();
  },
};
