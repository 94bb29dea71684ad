// Sign in: the password, then the second factor (a TOTP code or a
// recovery code).
import { h, replace, sentence } from '../dom.js';
import { call, get } from '../api.js';
import { field, formAlert, showProblem, clearErrors, values, busy } from '../forms.js';

function safeNext(query) {
  const next = query.get('next') || '/';
  // Only paths inside the app: never another origin ("//evil", "https:").
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

/**
 * codeProblem shows a refused second-factor code next to its field. The
 * server answers a wrong code and a lost session alike (401); asking for
 * /me tells them apart, and a lost session starts the sign-in over.
 */
export async function codeProblem(form, err, fieldName, ctx) {
  if (err.status === 401 && !(err.errors || []).length) {
    try {
      await get('/me', { quietAuth: true });
    } catch (e) {
      if (e.status === 401) {
        await ctx.signOut();
        return;
      }
    }
    showProblem(form, { ...err, errors: [{ field: fieldName, message: sentence(err.detail || err.message) }] });
    return;
  }
  showProblem(form, err);
}

/** password is the first step: e-mail and password. */
export const password = {
  title: 'Sign in',
  render(main, ctx) {
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
    const form = h('form', { class: 'stack', novalidate: true, 'aria-labelledby': 'signin-h' },
      formAlert(),
      field({ label: 'E-mail', name: 'email', type: 'email', autocomplete: 'username', required: true, spellcheck: false }),
      field({ label: 'Password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      h('div', { class: 'actions' }, submit, h('a', { href: '/forgot-password', class: 'forgot-link' }, 'Forgot password?')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const v = values(form);
      const missing = [];
      if (!v.email) missing.push({ field: 'email', message: 'Enter your e-mail address.' });
      if (!v.password) missing.push({ field: 'password', message: 'Enter your password.' });
      if (missing.length) {
        showProblem(form, { errors: missing, detail: '' });
        return;
      }
      await busy(submit, 'Signing in…', async () => {
        try {
          const { data } = await call('POST', '/auth/login', { email: v.email, password: v.password }, { quietAuth: true });
          ctx.passwordAccepted(data.mfa);
          const next = ctx.query.get('next');
          const q = next ? `?next=${encodeURIComponent(next)}` : '';
          ctx.navigate((data.mfa === 'enroll' ? '/enroll' : '/signin/2fa') + q, { replace: true });
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    replace(main, h('section', { class: 'card narrow auth-card' },
      h('h1', { id: 'signin-h' }, 'Sign in to Ordertune'),
      h('p', { class: 'lead' }, 'Two-step sign-in: your password, then a code from your authenticator app.'),
      ctx.query.get('reset') === 'done'
        ? h('p', { class: 'notice notice-ok', role: 'status' }, 'Your new password is set and every session of your account has ended. Sign in with it.')
        : null,
      form));
  },
};

/** totp is the second step: a 6-digit code, or one of the recovery codes. */
export const totp = {
  title: 'Two-step verification',
  render(main, ctx) {
    let useRecovery = false;
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Verify');
    const codeField = field({
      label: 'Authentication code', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', required: true,
      help: 'The 6-digit code your authenticator app shows for Ordertune.', attrs: { pattern: '[0-9 ]*', maxlength: 7 },
      className: 'code-field',
    });
    const recoveryField = field({
      label: 'Recovery code', name: 'recovery_code', autocomplete: 'off', required: true, spellcheck: false,
      help: 'One of the ten recovery codes you saved when you set up two-step sign-in. Each works once.',
    });
    recoveryField.hidden = true;
    const switchBtn = h('button', { type: 'button', class: 'btn btn-link' }, 'Use a recovery code instead');
    const form = h('form', { class: 'stack', novalidate: true },
      formAlert(), codeField, recoveryField,
      h('div', { class: 'actions' }, submit, switchBtn));
    switchBtn.addEventListener('click', () => {
      useRecovery = !useRecovery;
      codeField.hidden = useRecovery;
      recoveryField.hidden = !useRecovery;
      switchBtn.textContent = useRecovery ? 'Use an authentication code instead' : 'Use a recovery code instead';
      clearErrors(form);
      form.querySelector(useRecovery ? '[name=recovery_code]' : '[name=code]').focus();
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const v = values(form);
      const body = useRecovery ? { recovery_code: v.recovery_code } : { code: (v.code || '').replace(/\s+/g, '') };
      const name = useRecovery ? 'recovery_code' : 'code';
      if (!body[name]) {
        showProblem(form, { errors: [{ field: name, message: useRecovery ? 'Enter a recovery code.' : 'Enter the 6-digit code.' }] });
        return;
      }
      await busy(submit, 'Verifying…', async () => {
        try {
          await call('POST', '/auth/totp', body, { quietAuth: true });
          await ctx.signedIn();
          ctx.navigate(safeNext(ctx.query), { replace: true });
        } catch (err) {
          await codeProblem(form, err, name, ctx);
        }
      });
    });
    replace(main, h('section', { class: 'card narrow auth-card' },
      h('h1', null, 'Two-step verification'),
      h('p', { class: 'lead' }, 'Your password was right. Now enter the code from your authenticator app.'),
      form,
      h('p', { class: 'muted small' }, h('button', { type: 'button', class: 'btn btn-link', onclick: ctx.signOut }, 'Start over with a different account'))));
    // The code field is the only thing to do here: put the cursor in it.
    form.querySelector('[name=code]').focus();
  },
};
