// Settings → Position size: how much each confirmed entry buys.
import { h, replace, announce } from '../dom.js';
import { get, call } from '../api.js';
import { field, radios, formAlert, showProblem, clearErrors, busy } from '../forms.js';

/** page is Settings → Position size. */
export const page = {
  title: 'Position size',
  async render(main) {
    let settings = null;
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Position size')),
      h('p', { class: 'lead' }, 'How much each Confirm Buy buys. An exit sells what its entry bought, whatever this setting says.'),
      region);
    try {
      settings = await get('/settings');
    } catch (err) {
      replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      return;
    }
    const ps = settings.position_size || { mode: 'off', value: '' };
    const valueField = field({ label: 'Amount', name: 'value', inputmode: 'decimal', value: ps.mode === 'off' ? '' : ps.value, autocomplete: 'off', help: '-' });
    const valueLabel = valueField.querySelector('label');
    const valueHelp = valueField.querySelector('.help');
    const input = valueField.querySelector('input');

    function sync() {
      const mode = form.querySelector('input[name=mode]:checked')?.value || 'off';
      valueField.hidden = mode === 'off';
      if (mode === 'dollars') {
        valueLabel.textContent = 'Dollars per trade';
        valueHelp.textContent = 'Quantity = this amount divided by the signal\'s reference close, rounded down. Example: 5000.';
      } else if (mode === 'shares') {
        valueLabel.textContent = 'Shares per trade';
        valueHelp.textContent = 'The same number of shares on every signal. Example: 10.';
      }
    }
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
    const saved = h('p', { class: 'saved-msg', role: 'status' });
    const form = h('form', { class: 'stack card narrow', novalidate: true },
      formAlert(),
      radios({
        legend: 'Size each order by', name: 'mode', value: ps.mode, onchange: sync,
        options: [
          { value: 'off', label: 'Off — place no orders' },
          { value: 'dollars', label: 'A dollar amount' },
          { value: 'shares', label: 'A number of shares' },
        ],
      }),
      valueField,
      h('div', { class: 'actions' }, submit, saved));
    sync();
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Saving…', async () => {
        clearErrors(form);
        saved.textContent = '';
        const mode = form.querySelector('input[name=mode]:checked')?.value || 'off';
        const value = mode === 'off' ? '' : input.value.trim().replace(/[$,\s]/g, '');
        if (mode !== 'off' && !value) {
          showProblem(form, { errors: [{ field: 'value', message: mode === 'dollars' ? 'Enter a dollar amount.' : 'Enter a number of shares.' }] });
          return;
        }
        try {
          const body = mode === 'off' ? { mode } : { mode, value };
          await call('PUT', '/settings/position-size', body);
          saved.textContent = 'Saved.';
          announce('Position size saved.');
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    replace(region, form);
  },
};
