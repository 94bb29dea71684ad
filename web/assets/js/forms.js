// Form building and error display. Every control has a visible label, its
// help text and its error are tied to it with aria-describedby, and a
// problem+json `errors[]` entry lands next to the field it names.
import { h, uid, replace, sentence } from './dom.js';

/**
 * field builds a labelled control wrapped in an element that carries
 * data-field=name, so errors for `name` find their place.
 * opts: label, name, type ('text', 'password', 'textarea', 'select', …),
 * help (text or nodes), value, required, autocomplete, inputmode, options
 * ([{value, label}] for select), rows, placeholder, attrs (extra).
 */
export function field(opts) {
  const id = uid(`f-${opts.name}`);
  const helpId = opts.help ? `${id}-help` : null;
  const errId = `${id}-err`;
  const describedBy = [helpId, errId].filter(Boolean).join(' ');
  const common = {
    id,
    name: opts.name,
    required: !!opts.required,
    autocomplete: opts.autocomplete || null,
    inputmode: opts.inputmode || null,
    placeholder: opts.placeholder || null,
    'aria-describedby': describedBy,
    spellcheck: opts.spellcheck === undefined ? null : String(opts.spellcheck),
    ...(opts.attrs || {}),
  };
  const cls = [opts.mono && 'mono', opts.attrs && opts.attrs.class].filter(Boolean).join(' ') || null;
  let control;
  if (opts.type === 'textarea') {
    control = h('textarea', { ...common, rows: opts.rows || 4, class: cls }, opts.value || '');
  } else if (opts.type === 'select') {
    control = h('select', common, (opts.options || []).map((o) =>
      h('option', { value: o.value, selected: o.value === opts.value }, o.label)));
  } else {
    control = h('input', { ...common, type: opts.type || 'text', value: opts.value ?? '', class: cls });
  }
  return h('div', { class: `field ${opts.className || ''}`, 'data-field': opts.name },
    h('label', { for: id }, opts.label, opts.optional ? h('span', { class: 'optional' }, ' (optional)') : null),
    opts.help ? h('p', { class: 'help', id: helpId }, opts.help) : null,
    control,
    h('p', { class: 'field-error', id: errId, hidden: true }));
}

/**
 * radios builds a fieldset of radio buttons named name, with a legend and
 * an error slot like field().
 */
export function radios({ legend, name, options, value, help, onchange, className }) {
  const errId = uid(`r-${name}-err`);
  const helpId = help ? `${errId}-help` : null;
  return h('fieldset', { class: `field radios ${className || ''}`, 'data-field': name, 'aria-describedby': [helpId, errId].filter(Boolean).join(' ') },
    h('legend', null, legend),
    help ? h('p', { class: 'help', id: helpId }, help) : null,
    h('div', { class: 'radio-row' }, options.map((o) => {
      const id = uid(`r-${name}`);
      return h('div', { class: 'radio' },
        h('input', { type: 'radio', id, name, value: o.value, checked: o.value === value, onchange }),
        h('label', { for: id }, o.label));
    })),
    h('p', { class: 'field-error', id: errId, hidden: true }));
}

/** formAlert is the slot for errors that belong to no single field. */
export function formAlert() {
  return h('div', { class: 'form-alert', role: 'alert', tabindex: '-1', hidden: true });
}

/** clearErrors removes every error shown in form. */
export function clearErrors(form) {
  for (const p of form.querySelectorAll('.field-error')) {
    p.textContent = '';
    p.hidden = true;
  }
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  for (const w of form.querySelectorAll('.field.has-error')) w.classList.remove('has-error');
  const alert = form.querySelector('.form-alert');
  if (alert) {
    alert.replaceChildren();
    alert.hidden = true;
  }
}

/**
 * showProblem displays an ApiError in form: each errors[] entry next to its
 * field, anything else (detail, unknown fields) in the form's alert. Focus
 * moves to the first invalid field, or to the alert.
 * fieldNames maps API field names to form field names where they differ.
 */
export function showProblem(form, err, fieldNames = {}) {
  clearErrors(form);
  const alert = form.querySelector('.form-alert');
  const loose = [];
  let first = null;
  for (const fe of err.errors || []) {
    const name = fieldNames[fe.field] || fe.field;
    const wrap = name ? form.querySelector(`[data-field="${CSS.escape(name)}"]`) : null;
    if (!wrap) {
      loose.push(fe.field ? `${fe.field}: ${fe.message}` : fe.message);
      continue;
    }
    wrap.classList.add('has-error');
    const p = wrap.querySelector('.field-error');
    p.textContent = p.textContent ? `${p.textContent} ${sentence(fe.message)}` : sentence(fe.message);
    p.hidden = false;
    const controls = wrap.querySelectorAll('input, select, textarea');
    for (const c of controls) c.setAttribute('aria-invalid', 'true');
    if (!first) first = controls[0];
  }
  const matched = (err.errors || []).length - loose.length;
  if (alert) {
    const lead = matched === 0 ? sentence(err.detail || err.message) : 'Please correct the fields marked below.';
    replace(alert, h('p', null, lead),
      loose.length ? h('ul', null, loose.map((l) => h('li', null, l))) : null,
      err.requestId && err.status >= 500 ? h('p', { class: 'request-id' }, `Request id: ${err.requestId}`) : null);
    alert.hidden = false;
  }
  if (first) first.focus();
  else if (alert) alert.focus();
}

/** values returns a form's named values as a plain object of strings. */
export function values(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === 'string' ? v.trim() : v;
  return out;
}

/**
 * busy disables button while fn runs and shows label on it, so a double
 * click cannot send twice; it re-enables unless keepDisabled(result) says not.
 */
export async function busy(button, label, fn) {
  const old = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (label) button.textContent = label;
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    // fn may have relabelled the button for its new state; keep that.
    if (!label || button.textContent === label) button.textContent = old;
  }
}
