// First sign-in: set up two-step sign-in. The server makes a secret (shown
// as a QR code and as text), the user proves their app has it with one
// code, and gets ten recovery codes to keep.
import { h, replace, announce } from '../dom.js';
import { call, send } from '../api.js';
import { field, formAlert, showProblem, clearErrors, values, busy } from '../forms.js';
import { codeProblem } from './signin.js';

function groupSecret(s) {
  return (s || '').replace(/(.{4})/g, '$1 ').trim();
}

function recoveryStep(main, ctx, codes) {
  const list = h('ol', { class: 'recovery-codes mono', 'aria-label': 'Recovery codes' }, codes.map((c) => h('li', null, c)));
  const text = `Ordertune recovery codes\nEach code works once, in place of an authentication code.\n\n${codes.join('\n')}\n`;
  const blobUrl = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const copyBtn = h('button', { type: 'button', class: 'btn' }, 'Copy codes');
  copyBtn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(codes.join('\n'));
      announce('Recovery codes copied.');
      copyBtn.textContent = 'Copied';
    } catch {
      announce('Copying is not allowed here; select the codes and copy them by hand.');
    }
  });
  const saved = h('input', { type: 'checkbox', id: 'codes-saved' });
  const cont = h('button', { type: 'button', class: 'btn btn-primary', disabled: true }, 'Continue to Ordertune');
  saved.addEventListener('change', () => { cont.disabled = !saved.checked; });
  cont.addEventListener('click', async () => {
    URL.revokeObjectURL(blobUrl);
    await ctx.signedIn();
    ctx.navigate('/', { replace: true });
  });
  replace(main, h('section', { class: 'card narrow auth-card' },
    h('h1', { tabindex: '-1' }, 'Save your recovery codes'),
    h('p', { class: 'notice notice-ok', role: 'status' }, 'Two-step sign-in is on.'),
    h('p', null, 'If you lose your phone, each of these codes signs you in once instead of an authentication code. ',
      h('strong', null, 'They are shown only now.'), ' Keep them somewhere safe, such as a password manager.'),
    list,
    h('div', { class: 'actions' },
      h('a', { class: 'btn', href: blobUrl, download: 'ordertune-recovery-codes.txt' }, 'Download as text'),
      copyBtn),
    h('div', { class: 'check' }, saved, h('label', { for: 'codes-saved' }, 'I have saved my recovery codes')),
    h('div', { class: 'actions' }, cont)));
  main.querySelector('h1').focus();
}

/** page is the enrolment walk-through. */
export const page = {
  title: 'Set up two-step sign-in',
  async render(main, ctx) {
    const status = h('p', { class: 'loading' }, 'Preparing your authenticator secret…');
    replace(main, h('section', { class: 'card narrow auth-card' }, h('h1', null, 'Set up two-step sign-in'), status));
    let setup;
    try {
      setup = await send('POST', '/me/totp/setup');
    } catch (err) {
      replace(status, err.detail || err.message);
      status.className = 'notice notice-bad';
      status.setAttribute('role', 'alert');
      return;
    }
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Turn on two-step sign-in');
    const form = h('form', { class: 'stack', novalidate: true },
      formAlert(),
      field({
        label: 'Code from your app', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', required: true,
        help: 'After adding Ordertune to your app, type the 6-digit code it shows.', attrs: { maxlength: 7 },
        className: 'code-field',
      }),
      h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const code = (values(form).code || '').replace(/\s+/g, '');
      if (!code) {
        showProblem(form, { errors: [{ field: 'code', message: 'Enter the 6-digit code from your app.' }] });
        return;
      }
      await busy(submit, 'Checking…', async () => {
        try {
          const { data } = await call('POST', '/me/totp/enable', { code }, { quietAuth: true });
          recoveryStep(main, ctx, data.recovery_codes || []);
        } catch (err) {
          await codeProblem(form, err, 'code', ctx);
        }
      });
    });
    replace(main, h('section', { class: 'card narrow auth-card' },
      h('h1', null, 'Set up two-step sign-in'),
      h('p', { class: 'lead' }, 'Ordertune can place orders in your brokerage account, so every sign-in needs a second step: a code from an authenticator app on your phone (for example 1Password, Google Authenticator, Authy or Microsoft Authenticator).'),
      h('ol', { class: 'steps' },
        h('li', null,
          h('p', null, 'In your authenticator app, add an account and scan this QR code:'),
          h('img', { class: 'qr', src: setup.qr_png, width: 200, height: 200, alt: 'QR code holding your Ordertune authenticator secret' }),
          h('p', null, 'Cannot scan? Enter this key by hand (time-based, 6 digits):'),
          h('p', { class: 'secret mono', id: 'totp-secret', 'data-secret': setup.secret }, groupSecret(setup.secret)),
          setup.otpauth_uri ? h('p', { class: 'small' }, h('a', { href: setup.otpauth_uri }, 'Open in an authenticator app on this device')) : null),
        h('li', null, h('p', null, 'Type the code your app now shows:'), form)),
      // A way out: someone without their phone at hand can come back later.
      h('p', { class: 'muted small' }, 'Not now? ',
        h('button', { type: 'button', class: 'btn btn-quiet', 'data-action': 'sign-out', onclick: () => ctx.signOut() }, 'Sign out'),
        ' and set it up at your next sign-in.')));
    form.querySelector('[name=code]').focus();
  },
};
