// The banner on every page while another login (Client Portal, TWS) holds
// the user's IBKR brokerage session: GET /broker reports the session's
// state and what Ordertune does about it (the user's setting).
import { h, replace } from './dom.js';
import { get } from './api.js';

const POLL_MS = 5000;

/** competingText says what the user's setting makes Ordertune do. */
export function competingText(onCompeting) {
  return onCompeting === 'wait'
    ? 'Your IBKR session is in use by another login (Client Portal or TWS) — orders will wait until you sign out of it there: confirming now sends nothing.'
    : 'Your IBKR session is in use by another login (Client Portal or TWS) — Ordertune will take it back at your next order, which signs the other login out.';
}

/** sessionBanner polls the session's state; el is hidden unless another
 * login holds it. */
export function sessionBanner() {
  const el = h('div', { class: 'notice notice-warn broker-banner', role: 'status', 'data-banner': 'competing', hidden: true });
  let timer = null;
  async function refresh() {
    let ov = null;
    try {
      ov = await get('/broker', { quietAuth: true });
    } catch { /* no broker on this server, or offline: no banner */ }
    const conn = ov && ov.connections ? ov.connections[ov.active_mode] : null;
    const s = conn && conn.session;
    const competing = !!(s && (s.competing || s.state === 'competing'));
    if (competing) {
      replace(el, h('p', null, competingText(ov.on_competing), ' ',
        h('a', { href: '/settings/broker#competing-h' }, 'Change what Ordertune does')));
    }
    el.hidden = !competing;
  }
  function schedule() {
    clearInterval(timer);
    timer = document.hidden ? null : setInterval(refresh, POLL_MS);
  }
  function onVisible() {
    if (!document.hidden) refresh();
    schedule();
  }
  document.addEventListener('visibilitychange', onVisible);
  refresh();
  schedule();
  return {
    el,
    refresh,
    stop() {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
