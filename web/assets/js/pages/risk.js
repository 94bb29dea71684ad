// Settings → Risk: the user's own limits (at most the platform's ceilings)
// and the Pause trading switch.
import { h, replace, announce } from '../dom.js';
import { get, call } from '../api.js';
import { field, radios, formAlert, showProblem, clearErrors, busy } from '../forms.js';
import { LIMITS, limitValue, blocked, banner } from '../risk.js';

/** page is Settings → Risk. */
export const page = {
  title: 'Risk',
  async render(main) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Risk')),
      h('p', { class: 'lead' }, 'Limits on your entries, checked before every order. Exits that sell what you hold are never refused by them, nor by a pause.'),
      region);
    let st;
    try {
      st = await get('/settings/risk');
    } catch (err) {
      replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      return;
    }
    const inputs = {};
    const fields = LIMITS.map((l) => {
      const f = field({
        label: l.label, name: l.name, inputmode: l.dollars ? 'decimal' : 'numeric', autocomplete: 'off', value: st[l.name] ?? '',
        help: `Empty: the platform's ceiling of ${limitValue(l.name, st.ceilings[l.name])} applies. Yours can only be lower.`,
      });
      inputs[l.name] = f.querySelector('input');
      return f;
    });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
    const saved = h('p', { class: 'saved-msg', role: 'status' });
    const bannerSlot = h('div', null, banner({ entries: blocked(st, null).entries }));
    const halts = ['live', 'paper'].filter((m) => st.halted[m]);
    const form = h('form', { class: 'stack card narrow', novalidate: true },
      formAlert(),
      radios({
        legend: 'Trading', name: 'trading_paused', value: st.trading_paused ? 'paused' : 'active',
        help: 'Pausing refuses your entries at once; resuming asks for a fresh two-factor code.',
        options: [{ value: 'active', label: 'Active' }, { value: 'paused', label: 'Paused' }],
      }),
      ...fields,
      h('p', { class: 'small muted' }, 'Raising or removing a limit asks for a fresh two-factor code; lowering one never does.'),
      h('div', { class: 'actions' }, submit, saved));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Saving…', async () => {
        clearErrors(form);
        saved.textContent = '';
        const body = { trading_paused: form.querySelector('input[name=trading_paused]:checked')?.value === 'paused' };
        for (const l of LIMITS) {
          const v = inputs[l.name].value.trim().replace(/[$,\s]/g, '');
          body[l.name] = v === '' ? null : v;
        }
        try {
          const { data } = await call('PUT', '/settings/risk', body);
          replace(bannerSlot, banner({ entries: blocked(data, null).entries }));
          saved.textContent = 'Saved.';
          announce('Risk settings saved.');
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    replace(region,
      halts.length ? h('p', { class: 'notice notice-warn', role: 'status' }, `The platform halted trading in ${halts.join(' and ')} accounts: ${st.halt_reason}`) : null,
      bannerSlot, form);
  },
};
