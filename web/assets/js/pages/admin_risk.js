// Admin → Risk: the platform's ceilings over the environment's, and the
// halt per mode with its reason.
import { h, replace, announce } from '../dom.js';
import { get, call } from '../api.js';
import { field, formAlert, showProblem, clearErrors, busy } from '../forms.js';
import { LIMITS, limitValue } from '../risk.js';

/** page is Admin → Risk. */
export const page = {
  title: 'Risk (admin)',
  async render(main) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Platform risk')),
      h('p', { class: 'lead' }, 'Ceilings every user\'s limits stay under, and the halt switches. A halt refuses every confirm of that mode, exits included, on every server at once; cancels keep working.'),
      region);
    let p;
    try {
      p = await get('/admin/risk');
    } catch (err) {
      replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      return;
    }
    const inputs = {};
    const fields = LIMITS.map((l) => {
      const own = p[l.name] !== p.environment[l.name] ? p[l.name] : '';
      const f = field({
        label: l.label, name: l.name, inputmode: l.dollars ? 'decimal' : 'numeric', autocomplete: 'off', value: own ?? '',
        help: `Empty: the environment's ${limitValue(l.name, p.environment[l.name])}.`,
      });
      inputs[l.name] = f.querySelector('input');
      return f;
    });
    const halt = {};
    const haltBoxes = ['live', 'paper'].map((m) => {
      halt[m] = h('input', { type: 'checkbox', id: `halt-${m}`, name: `halt_${m}`, checked: !!p.halted[m] });
      return h('div', { class: 'radio' }, halt[m], h('label', { for: `halt-${m}` }, `Halt ${m} trading`));
    });
    const reason = field({ label: 'Halt reason (users see it)', name: 'halt_reason', type: 'textarea', rows: 2, value: p.halt_reason });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
    const saved = h('p', { class: 'saved-msg', role: 'status' });
    const form = h('form', { class: 'stack card narrow', novalidate: true },
      formAlert(),
      h('fieldset', { class: 'field', 'data-field': 'halted' }, h('legend', null, 'Halts'), ...haltBoxes),
      reason,
      ...fields,
      h('div', { class: 'actions' }, submit, saved));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Saving…', async () => {
        clearErrors(form);
        saved.textContent = '';
        const body = { halted: { live: halt.live.checked, paper: halt.paper.checked }, halt_reason: reason.querySelector('textarea').value.trim() };
        for (const l of LIMITS) {
          const v = inputs[l.name].value.trim().replace(/[$,\s]/g, '');
          body[l.name] = v === '' ? null : v;
        }
        try {
          await call('PUT', '/admin/risk', body);
          saved.textContent = 'Saved.';
          announce('Platform risk saved.');
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    replace(region, form);
  },
};
