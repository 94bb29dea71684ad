// Settings → Broker: the IBKR OAuth credentials for paper and live, Test
// Connection with each step's outcome, save, delete, and which mode orders
// use.
import { h, replace, badge, dateTime, plain, announce } from '../dom.js';
import { get, call } from '../api.js';
import { field, formAlert, showProblem, clearErrors, values, busy } from '../forms.js';

const STEPS = [
  ['credentials', 'Credentials', 'Parse the keys and check the fields'],
  ['live_session_token', 'Live session token', 'OAuth handshake with IBKR'],
  ['brokerage_session', 'Brokerage session', 'Open the trading session'],
  ['accounts', 'Account', 'Find your account at IBKR'],
  ['trading_permissions', 'Trading permissions', 'Ask IBKR about a one-share order (nothing is placed)'],
];

// The credential fields in form order, with the labels people see; errors
// name fields by these labels, never by the API's names.
const LABELS = {
  consumer_key: 'Consumer key',
  access_token: 'Access token',
  access_token_secret: 'Access token secret',
  signature_key_pem: 'Signature key (private, PEM)',
  encryption_key_pem: 'Encryption key (private, PEM)',
  dh_params: 'Diffie-Hellman parameters',
  account_id: 'Account id',
};
const FIELDS = Object.keys(LABELS);

/** fieldHint words a credentials step's field errors with the form's labels. */
function fieldHint(errors) {
  return errors.map((e) => `${LABELS[e.field] || 'Credentials'}: ${e.message}`).join(' · ');
}

function modeName(mode) {
  return mode === 'live' ? 'Live' : 'Paper';
}

/** stepsList renders a TestResult's steps; steps not reached show as skipped. */
function stepsList(result, running) {
  const byName = Object.fromEntries(((result && result.steps) || []).map((s) => [s.name, s]));
  const fieldErrors = (result && result.error && result.error.errors) || [];
  if (byName.credentials && fieldErrors.length) byName.credentials = { ...byName.credentials, hint: fieldHint(fieldErrors) };
  let failedSeen = false;
  return h('ol', { class: 'test-steps' }, STEPS.map(([name, label, what], i) => {
    const s = byName[name];
    let state = 'skipped';
    let icon = '–';
    let srState = 'not run';
    if (running) {
      state = i === 0 ? 'running' : 'waiting';
      icon = i === 0 ? '…' : '·';
      srState = i === 0 ? 'running' : 'waiting';
    } else if (s) {
      state = s.ok ? 'ok' : 'bad';
      icon = s.ok ? '✓' : '✗';
      srState = s.ok ? 'passed' : 'failed';
      if (!s.ok) failedSeen = true;
    } else if (failedSeen || (result && !result.ok)) {
      srState = 'not run';
    }
    return h('li', { class: `step step-${state}`, 'data-step': name, 'data-ok': s ? String(!!s.ok) : null },
      h('span', { class: 'step-icon', 'aria-hidden': 'true' }, icon),
      h('div', { class: 'step-body' },
        h('p', { class: 'step-title' },
          h('strong', null, label), h('span', { class: 'sr-only' }, `: ${srState}`),
          s && s.duration_ms != null ? h('span', { class: 'step-ms' }, `${s.duration_ms} ms`) : null,
          !s && !running ? h('span', { class: 'step-ms', 'aria-hidden': 'true' }, 'not run') : null),
        h('p', { class: 'step-msg' }, s ? (s.message || (s.ok ? 'OK' : 'Failed')) : what),
        s && s.hint ? h('p', { class: 'step-hint' }, h('span', { class: 'hint-label' }, 'What to do: '), s.hint) : null));
  }));
}

function testResultView(result) {
  const ok = !!(result && result.ok);
  const err = result && result.error;
  return h('div', { class: `test-result ${ok ? 'is-ok' : 'is-bad'}`, 'data-ok': String(ok) },
    h('p', { class: 'test-summary' },
      h('strong', null, ok ? 'Connection works.' : 'Connection failed.'),
      ' ', result && result.tested_at ? h('span', { class: 'muted small' }, 'Tested ', dateTime(result.tested_at)) : null),
    // The failed step below carries the hint; repeat it here only when no
    // step does.
    !ok && err ? h('div', { class: 'test-error' },
      h('p', null, err.message),
      err.hint && !(err.errors && err.errors.length) && !((result.steps || []).some((st) => st.hint === err.hint))
        ? h('p', { class: 'step-hint' }, h('span', { class: 'hint-label' }, 'What to do: '), err.hint) : null) : null,
    stepsList(result, false));
}

function helpText() {
  return {
    consumer_key: 'The 9-character consumer key you chose in IBKR\'s Self-Service Portal when registering for OAuth (capital letters).',
    access_token: 'Generated in the Self-Service Portal after your keys are uploaded ("Generate Token").',
    access_token_secret: 'Shown next to the access token: a long base64 string that IBKR encrypted to your encryption key.',
    signature_key_pem: 'The private half of the key pair whose public half you uploaded as the "Public Signing Key". Paste the whole PEM, BEGIN and END lines included.',
    encryption_key_pem: 'The private half of the key pair you uploaded as the "Public Encryption Key". Leave empty only if you uploaded the same public key twice.',
    dh_params: 'The Diffie-Hellman parameters you uploaded (the dhparam.pem file, "BEGIN DH PARAMETERS"), or the prime in hex.',
    account_id: 'Your IBKR account number, shown at the top right of Client Portal: DU… for paper, U… for live.',
  };
}

/** page is Settings → Broker. */
export const page = {
  title: 'Broker',
  async render(main, ctx) {
    const help = helpText();
    let info = null; // GET /broker
    let mode = ctx.query.get('mode') === 'live' ? 'live' : (ctx.query.get('mode') === 'paper' ? 'paper' : null);

    const head = h('div', { class: 'page-head' }, h('h1', null, 'Broker'));
    const summary = h('section', { class: 'card', 'aria-labelledby': 'conn-h' }, h('p', { class: 'loading' }, 'Loading your connection…'));
    const modeSwitch = h('div', { class: 'segmented', role: 'radiogroup', 'aria-label': 'Credential set' });
    const resultRegion = h('div', { class: 'test-region', 'aria-live': 'polite' });
    const loadAlert = h('div');

    const form = h('form', { class: 'stack broker-form', novalidate: true, autocomplete: 'off' },
      formAlert(),
      field({ label: LABELS.consumer_key, name: 'consumer_key', help: help.consumer_key, spellcheck: false, autocomplete: 'off', mono: true, attrs: { maxlength: 32 } }),
      field({ label: LABELS.access_token, name: 'access_token', help: help.access_token, spellcheck: false, autocomplete: 'off', mono: true }),
      field({ label: LABELS.access_token_secret, name: 'access_token_secret', type: 'password', help: help.access_token_secret, autocomplete: 'new-password', mono: true }),
      field({ label: LABELS.signature_key_pem, name: 'signature_key_pem', type: 'textarea', rows: 5, help: help.signature_key_pem, spellcheck: false, mono: true, placeholder: 'Paste the whole PEM, BEGIN to END lines' }),
      field({ label: LABELS.encryption_key_pem, name: 'encryption_key_pem', type: 'textarea', rows: 5, help: help.encryption_key_pem, spellcheck: false, mono: true, optional: true, placeholder: 'Paste the whole PEM, BEGIN to END lines' }),
      field({ label: LABELS.dh_params, name: 'dh_params', type: 'textarea', rows: 4, help: help.dh_params, spellcheck: false, mono: true, placeholder: '-----BEGIN DH PARAMETERS-----' }),
      field({ label: LABELS.account_id, name: 'account_id', help: help.account_id, spellcheck: false, autocomplete: 'off', mono: true, attrs: { maxlength: 16 } }));
    const testBtn = h('button', { type: 'button', class: 'btn', 'data-action': 'test' }, 'Test Connection');
    const saveBtn = h('button', { type: 'submit', class: 'btn btn-primary', 'data-action': 'save' }, 'Connect');
    form.append(h('div', { class: 'actions' }, saveBtn, testBtn));

    // With a saved set the form stays folded away: the page shows the
    // connection, and "Replace credentials" opens an empty form for a new set.
    let editing = false;
    const credsH = h('h2', { id: 'creds-h', tabindex: '-1' }, 'Credentials');
    const credsCard = h('section', { class: 'card', 'aria-labelledby': 'creds-h' },
        credsH,
        h('p', null, 'You create these in IBKR\'s ', h('strong', null, 'Self-Service Portal'), ' (OAuth consumer registration). ',
          h('strong', null, 'IBKR expects two RSA key pairs'), ': one signs every request, the other encrypts your access token secret. You upload their public halves to IBKR, together with Diffie-Hellman parameters, and paste the private halves here.'),
        h('p', { class: 'muted small' }, 'Saved secrets are encrypted and never shown again, not even to you. To change anything, paste the whole set again. Test Connection tries what is in the form, or the saved set when the form is empty.'),
        form);
    // What Ordertune does while another login holds the IBKR session.
    const competingCard = h('section', { class: 'card', 'aria-labelledby': 'competing-h' });
    replace(main, head,
      h('p', { class: 'lead' }, 'Connect your Interactive Brokers Pro account once. Ordertune then places the orders you confirm directly at IBKR, whether your computer is on or off. There is nothing to install and no daily re-login.'),
      loadAlert, modeSwitch, summary, resultRegion, credsCard, competingCard);

    function renderCompeting() {
      const alert = formAlert();
      const choice = (value, label, detail) => h('div', { class: 'choice' },
        h('input', {
          type: 'radio', name: 'on_competing', id: `competing-${value}`, value, checked: (info && info.on_competing) === value,
          onchange: async () => {
            try {
              await call('PUT', '/broker/session-preference', { on_competing: value });
              if (info) info.on_competing = value;
              announce('Saved.');
            } catch (err) { showProblem(competingCard, err); }
          },
        }),
        h('label', { for: `competing-${value}` }, h('strong', null, label), ' ', h('span', { class: 'muted small' }, detail)));
      replace(competingCard,
        h('h2', { id: 'competing-h', tabindex: '-1' }, 'When another login uses your IBKR session'),
        h('p', null, 'IBKR allows one brokerage session per user. Signing in to Client Portal or TWS takes it from Ordertune; a banner then shows on every page.'),
        alert,
        h('fieldset', { class: 'stack' }, h('legend', { class: 'sr-only' }, 'When another login uses your IBKR session'),
          choice('take_back', 'Take it back at my next order', '(default) The other login is signed out when Ordertune places your order.'),
          choice('wait', 'Wait', 'Orders are not sent while the other login has the session; confirming fails with nothing sent.')));
    }

    function current() {
      return info && info.connections ? info.connections[mode] : null;
    }

    function renderSwitch() {
      replace(modeSwitch, ['paper', 'live'].map((m) => {
        const id = `mode-${m}`;
        const conn = info && info.connections ? info.connections[m] : null;
        return h('span', null,
          h('input', {
            type: 'radio', name: 'mode', id, value: m, checked: m === mode,
            onchange: () => { mode = m; editing = false; history.replaceState(null, '', `/settings/broker?mode=${m}`); clearErrors(form); form.reset(); replace(resultRegion); renderAll(); },
          }),
          h('label', { for: id }, modeName(m), conn ? h('span', { class: 'sr-only' }, ` (${conn.status})`) : null));
      }));
    }

    function renderSummary() {
      const conn = current();
      const active = info && info.active_mode === mode;
      const alert = formAlert();
      const children = [h('h2', { id: 'conn-h' }, `${modeName(mode)} connection`)];
      if (!conn) {
        children.push(h('p', { class: 'status-line' }, badge('untested', 'Not connected'), ' ', h('span', { class: 'muted' }, `No ${modeName(mode).toLowerCase()} credentials saved yet.`)));
      } else {
        const useBtn = !active ? h('button', { type: 'button', class: 'btn', 'data-action': 'activate' }, `Use ${modeName(mode)} for orders`) : null;
        const delBtn = h('button', { type: 'button', class: 'btn btn-danger', 'data-action': 'delete' }, 'Delete');
        const retestBtn = h('button', { type: 'button', class: 'btn', 'data-action': 'test-saved' }, 'Test Connection');
        const replaceBtn = !editing ? h('button', { type: 'button', class: 'btn', 'data-action': 'replace' }, 'Replace credentials') : null;
        children.push(
          h('p', { class: 'status-line' }, badge(conn.status), active ? h('span', { class: 'active-pill' }, 'Orders go here') : null),
          conn.status === 'pending_activation' ? h('p', { class: 'notice notice-warn' }, 'IBKR has not activated this consumer key yet. New consumers can take until after IBKR\'s weekend restart to activate; test again then.') : null,
          h('dl', { class: 'facts' },
            h('div', null, h('dt', null, 'Consumer key'), h('dd', { class: 'mono' }, plain(conn.consumer_key))),
            h('div', null, h('dt', null, 'Account'), h('dd', { class: 'mono' }, plain(conn.account_id_masked))),
            h('div', null, h('dt', null, 'Saved'), h('dd', null, dateTime(conn.updated_at)))),
          conn.last_test ? h('details', { class: 'last-test' }, h('summary', null, 'Last test'), testResultView(conn.last_test)) : null,
          alert,
          h('div', { class: 'actions' }, useBtn, retestBtn, replaceBtn, delBtn));
        retestBtn.addEventListener('click', () => busy(retestBtn, 'Testing…', () => runTest(undefined)));
        if (replaceBtn) {
          replaceBtn.addEventListener('click', () => {
            editing = true;
            renderAll();
            form.elements.consumer_key.focus();
          });
        }
        if (useBtn) {
          useBtn.addEventListener('click', () => busy(useBtn, 'Switching…', async () => {
            try {
              await call('PUT', '/broker/active', { mode });
              await reload();
              announce(`Orders now go to your ${mode} account.`);
            } catch (err) { showProblem(summary, err); }
          }));
        }
        delBtn.addEventListener('click', () => confirmDelete(delBtn));
      }
      if (info && !active && info.active_mode) {
        children.push(h('p', { class: 'muted small' }, `Orders currently go to your ${info.active_mode} account.`));
      }
      replace(summary, children);
    }

    function renderAll() {
      renderSwitch();
      renderSummary();
      const conn = current();
      credsCard.hidden = !!conn && !editing;
      credsH.textContent = conn ? 'Replace credentials' : 'Credentials';
      saveBtn.textContent = conn ? 'Save and reconnect' : 'Connect';
    }

    function confirmDelete(opener) {
      const yes = h('button', { type: 'button', class: 'btn btn-danger' }, `Delete ${modeName(mode).toLowerCase()} credentials`);
      const no = h('button', { type: 'button', class: 'btn' }, 'Keep them');
      const alert = formAlert();
      const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'del-h' },
        h('h2', { id: 'del-h' }, `Delete the ${modeName(mode).toLowerCase()} connection?`),
        h('p', null, 'Ordertune forgets these credentials at once. Orders already placed at IBKR are not affected. Confirming a signal will need a connection again.'),
        alert, h('div', { class: 'actions dialog-actions' }, yes, no));
      document.body.append(dlg);
      dlg.addEventListener('close', () => { dlg.remove(); if (opener.isConnected) opener.focus(); else head.querySelector('h1').focus(); });
      no.addEventListener('click', () => dlg.close());
      yes.addEventListener('click', () => busy(yes, 'Deleting…', async () => {
        try {
          await call('DELETE', `/broker/${mode}`);
          dlg.close();
          replace(resultRegion);
          await reload();
          announce('Credentials deleted.');
        } catch (err) { showProblem(dlg, err); }
      }));
      dlg.showModal();
      no.focus();
    }

    function formBody() {
      const v = values(form);
      const body = {};
      for (const f of FIELDS) if (v[f]) body[f] = v[f];
      return body;
    }

    async function runTest(body) {
      replace(resultRegion, h('div', { class: 'test-result is-running' },
        h('p', { class: 'test-summary' }, h('strong', null, 'Testing the connection…')), stepsList(null, true)));
      try {
        const { data } = await call('POST', `/broker/${mode}/test`, body);
        replace(resultRegion, testResultView(data));
        resultRegion.scrollIntoView({ block: 'nearest' });
        const fieldErrors = (data.error && data.error.errors) || [];
        if (body && fieldErrors.length) {
          // Marked at the fields, as Connect marks them.
          showProblem(form, { detail: data.error.message, errors: fieldErrors });
        }
        announce(data.ok ? 'Connection works.' : `Connection failed: ${(data.error && data.error.message) || ''}`);
        await reload();
      } catch (err) {
        replace(resultRegion);
        showProblem(form, err);
      }
    }

    testBtn.addEventListener('click', () => busy(testBtn, 'Testing…', async () => {
      clearErrors(form);
      const body = formBody();
      if (Object.keys(body).length === 0) {
        if (!current()) {
          showProblem(form, { detail: 'Paste your credentials first, or save them, then test.', errors: [] });
          return;
        }
        await runTest(undefined);
      } else {
        await runTest(body);
      }
    }));

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(saveBtn, 'Saving…', async () => {
        clearErrors(form);
        // A result from before says nothing about what is being saved.
        replace(resultRegion);
        try {
          await call('PUT', `/broker/${mode}`, formBody());
        } catch (err) {
          showProblem(form, err);
          return;
        }
        form.reset();
        editing = false;
        await reload();
        announce('Credentials saved. Testing them now.');
        summary.querySelector('h2').setAttribute('tabindex', '-1');
        summary.querySelector('h2').focus();
        // A saved set is "untested" until it has reached IBKR once.
        await runTest(undefined);
      });
    });

    async function reload() {
      try {
        info = await get('/broker');
        replace(loadAlert);
      } catch (err) {
        info = null;
        replace(loadAlert, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
      }
      if (!mode) mode = (info && info.active_mode) || 'paper';
      renderAll();
      renderCompeting();
    }
    await reload();
  },
};
