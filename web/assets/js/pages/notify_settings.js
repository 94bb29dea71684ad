// Settings → Notifications (which events reach you by e-mail, webhook and
// in the app) and Settings → Webhooks (endpoints, their secret shown once,
// a test event, the delivery log).
import { h, replace, announce, dateTime, plain, table, badge } from '../dom.js';
import { get, call, send } from '../api.js';
import { field, formAlert, showProblem, clearErrors, busy } from '../forms.js';
import { eventTitle, eventTypes } from './notifications.js';

const CHANNELS = [
  { key: 'in_app', label: 'In the app' },
  { key: 'email', label: 'E-mail' },
  { key: 'webhook', label: 'Webhooks' },
];

/** preferences is the Settings → Notifications page. */
export const preferences = {
  title: 'Notifications settings',
  async render(main) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Notifications')),
      h('p', { class: 'lead' }, 'Choose how you hear about each kind of event. Webhooks also need an endpoint that subscribes to the event: ',
        h('a', { href: '/settings/webhooks' }, 'Settings → Webhooks'), '.'),
      region);
    let prefs;
    try {
      prefs = await get('/settings/notifications');
    } catch (err) {
      replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      return;
    }
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save');
    const saved = h('p', { class: 'notice notice-ok', role: 'status', hidden: true }, 'Saved.');
    const form = h('form', { class: 'stack', novalidate: true }, formAlert(), saved,
      table({
        caption: 'Notification preferences',
        hideCaption: true,
        columns: [{ label: 'Event', header: true, cell: (t) => eventTitle(t) }].concat(CHANNELS.map((c) => ({
          label: c.label,
          cell: (t) => h('input', {
            type: 'checkbox', name: `${c.key}:${t}`, checked: Boolean(prefs[c.key] && prefs[c.key][t]),
            'aria-label': `${eventTitle(t)} — ${c.label}`,
          }),
        }))),
        rows: eventTypes.map((t) => ({ data: t, attrs: { 'data-event': t } })),
      }),
      h('div', { class: 'actions' }, submit));
    replace(region, form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Saving…', async () => {
        clearErrors(form);
        saved.hidden = true;
        const body = { email: {}, webhook: {}, in_app: {} };
        for (const input of form.querySelectorAll('input[type=checkbox]')) {
          const [channel, type] = input.name.split(':');
          body[channel][type] = input.checked;
        }
        try {
          await send('PUT', '/settings/notifications', body);
          saved.hidden = false;
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
  },
};

/** webhooks is the Settings → Webhooks page. */
export const webhooks = {
  title: 'Webhooks',
  async render(main) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    const shown = h('div', { 'aria-live': 'polite' });
    const url = field({ label: 'URL', name: 'url', type: 'url', autocomplete: 'off', help: 'An https:// address that accepts POST requests.' });
    const types = h('fieldset', { class: 'field', 'data-field': 'event_types' },
      h('legend', null, 'Events'),
      eventTypes.map((t) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: 'event_types', value: t, checked: t.startsWith('order.') }), ' ', eventTitle(t))),
      h('p', { class: 'field-error', hidden: true }));
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add endpoint');
    const form = h('form', { class: 'stack card narrow', novalidate: true }, formAlert(), url, types, h('div', { class: 'actions' }, submit));
    const log = h('div', { 'aria-live': 'polite' });
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Webhooks')),
      h('p', { class: 'lead' }, 'Ordertune POSTs each event to your endpoints, signed the Standard Webhooks way ',
        '(headers webhook-id, webhook-timestamp, webhook-signature). webhook-id is the event id: the same on every retry. ',
        'Failed deliveries are retried for more than a day; an endpoint failing for a day is turned off and you get an e-mail.'),
      form, shown, h('h2', null, 'Endpoints'), region, log);

    async function showLog(ep) {
      let data;
      try {
        data = await get(`/webhooks/${encodeURIComponent(ep.id)}/deliveries`);
      } catch (err) {
        replace(log, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
        return;
      }
      replace(log, h('h2', { tabindex: '-1' }, `Deliveries to ${ep.url}`), table({
        caption: `Deliveries to ${ep.url}`,
        hideCaption: true,
        className: 'deliveries',
        columns: [
          { label: 'When', cell: (d) => dateTime(d.at) },
          { label: 'Event', header: true, cell: (d) => eventTitle(d.event_type) },
          { label: 'Event id', cell: (d) => h('code', { class: 'mono' }, d.event_id) },
          { label: 'Attempt', cell: (d) => String(d.attempt) },
          { label: 'Result', cell: (d) => (d.status_code >= 200 && d.status_code < 300 ? badge('connected', `${d.status_code}`) : badge('failed', d.status_code ? String(d.status_code) : 'No answer')) },
          { label: 'Error', cell: (d) => plain(d.error) },
          { label: 'Time', cell: (d) => `${d.duration_ms} ms` },
        ],
        rows: data.items.map((d) => ({ data: d })),
        empty: 'No deliveries yet.',
      }));
    }

    async function load() {
      let data;
      try {
        data = await get('/webhooks');
      } catch (err) {
        replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
        return;
      }
      replace(region, table({
        caption: 'Webhook endpoints',
        hideCaption: true,
        columns: [
          { label: 'URL', header: true, cell: (ep) => h('span', { class: 'mono' }, ep.url) },
          { label: 'Events', cell: (ep) => ep.event_types.map(eventTitle).join(', ') },
          { label: 'Status', cell: (ep) => (ep.disabled_at ? badge('failed', 'Turned off') : badge('connected', 'Active')) },
          {
            label: 'Actions',
            cell: (ep) => {
              const test = h('button', { type: 'button', class: 'btn', 'aria-label': `Send test event to ${ep.url}` }, 'Send test event');
              const deliveries = h('button', { type: 'button', class: 'btn btn-quiet', 'aria-label': `Deliveries to ${ep.url}` }, 'Deliveries');
              const del = h('button', { type: 'button', class: 'btn btn-danger', 'aria-label': `Delete ${ep.url}` }, 'Delete');
              test.addEventListener('click', () => busy(test, 'Sending…', async () => {
                try {
                  await call('POST', `/webhooks/${encodeURIComponent(ep.id)}/test`);
                  announce('Test event queued.');
                  // Give the queue a moment, then show the attempt.
                  await new Promise((r) => { setTimeout(r, 1500); });
                  await load();
                  await showLog(ep);
                } catch (err) {
                  showProblem(form, err);
                }
              }));
              deliveries.addEventListener('click', () => showLog(ep));
              del.addEventListener('click', () => busy(del, 'Deleting…', async () => {
                try {
                  await call('DELETE', `/webhooks/${encodeURIComponent(ep.id)}`);
                  announce('Endpoint deleted.');
                  replace(log);
                  await load();
                } catch (err) {
                  showProblem(form, err);
                }
              }));
              return h('div', { class: 'actions' }, test, deliveries, del);
            },
          },
        ],
        rows: data.items.map((ep) => ({ data: ep, attrs: { 'data-webhook-id': ep.id } })),
        empty: 'No endpoints yet.',
      }));
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, 'Adding…', async () => {
        clearErrors(form);
        replace(shown);
        const chosen = [...form.querySelectorAll('input[name=event_types]:checked')].map((i) => i.value);
        try {
          const ep = await send('POST', '/webhooks', { url: url.querySelector('input').value.trim(), event_types: chosen });
          url.querySelector('input').value = '';
          replace(shown, h('div', { class: 'notice token-once', role: 'status' },
            h('p', null, 'Endpoint added. Copy its signing secret now: it is not shown again.'),
            h('p', null, h('code', { class: 'mono token-value webhook-secret' }, ep.secret))));
          await load();
        } catch (err) {
          showProblem(form, err);
        }
      });
    });
    await load();
  },
};
