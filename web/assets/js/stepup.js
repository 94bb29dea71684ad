// The step-up dialog: a sensitive action (saving broker credentials,
// switching to live, raising the position size, changing the password,
// admin changes) answered step_up_required, so the user confirms it is
// them with a fresh code; api.js then sends the action again.
import { h, announce } from './dom.js';
import { call } from './api.js';
import { field, formAlert, showProblem, clearErrors, values, busy } from './forms.js';

/**
 * askStepUp shows the dialog and resolves true once the server accepted a
 * code (POST /auth/step-up), false when the user cancelled.
 */
export function askStepUp() {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    let useRecovery = false;
    let done = false;
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Confirm');
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    const codeField = field({
      label: 'Authentication code', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric', required: true,
      help: 'A new 6-digit code from your authenticator app (not the one you signed in with).',
      attrs: { pattern: '[0-9 ]*', maxlength: 7 }, className: 'code-field',
    });
    const recoveryField = field({
      label: 'Recovery code', name: 'recovery_code', autocomplete: 'off', required: true, spellcheck: false,
      help: 'One of your saved recovery codes. Each works once.',
    });
    recoveryField.hidden = true;
    const switchBtn = h('button', { type: 'button', class: 'btn btn-link' }, 'Use a recovery code instead');
    const form = h('form', { class: 'stack', novalidate: true },
      formAlert(), codeField, recoveryField,
      h('div', { class: 'actions dialog-actions' }, submit, cancel, switchBtn));
    const dlg = h('dialog', { class: 'dialog', id: 'step-up', 'aria-labelledby': 'step-up-h', 'aria-describedby': 'step-up-p' },
      h('h2', { id: 'step-up-h' }, 'Confirm it’s you'),
      h('p', { id: 'step-up-p' }, 'This change needs a fresh two-factor code. After you confirm, it is made, and further changes of this kind need no code for five minutes.'),
      form);

    const finish = (ok) => {
      if (done) return;
      done = true;
      if (dlg.open) dlg.close();
      dlg.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(ok);
    };
    dlg.addEventListener('close', () => finish(false));
    cancel.addEventListener('click', () => finish(false));
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
      const name = useRecovery ? 'recovery_code' : 'code';
      const body = useRecovery ? { recovery_code: v.recovery_code } : { code: (v.code || '').replace(/\s+/g, '') };
      if (!body[name]) {
        showProblem(form, { errors: [{ field: name, message: useRecovery ? 'Enter a recovery code.' : 'Enter the 6-digit code.' }] });
        return;
      }
      await busy(submit, 'Confirming…', async () => {
        try {
          await call('POST', '/auth/step-up', body, { noStepUp: true });
          announce('Confirmed.');
          finish(true);
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    document.body.append(dlg);
    dlg.showModal();
    form.querySelector('[name=code]').focus();
  });
}
