// Notifications: the bell in the header (unread count, polled so new ones
// appear without a reload) and the list page with mark read / all read.
import { h, replace, announce, dateTime } from '../dom.js';
import { get, call } from '../api.js';
import { busy } from '../forms.js';

const TITLES = {
  'signal.published': 'New signal published',
  'order.submitted': 'Order submitted',
  'order.filled': 'Order filled',
  'order.partially_filled': 'Order partially filled',
  'order.cancelled': 'Order cancelled',
  'order.failed': 'Order failed',
  'order.unknown': 'Order outcome unknown',
  'broker.session_lost': 'IBKR session lost',
  'broker.competing_session': 'IBKR session taken over by another login',
  'broker.connection_restored': 'IBKR connection restored',
  'broker.activated': 'IBKR credentials activated',
  'risk.limit_hit': 'Risk limit reached',
  'trading.halted': 'Trading halted',
  'security.sign_in': 'New sign-in to your account',
  'security.password_changed': 'Your password was changed',
  'security.token_created': 'An API token was created',
  'security.account_locked': 'Your account was locked after failed sign-ins',
  'security.signup_attempt': 'Someone tried to sign up with your address',
  'webhook.test': 'Webhook test',
};

/** eventTitle is the human name of an event type. */
export function eventTitle(type) { return TITLES[type] || type; }

/** eventTypes lists every event type a user can choose, in API order. */
export const eventTypes = Object.keys(TITLES).filter((t) => t !== 'webhook.test');

// What one line of a notification says besides its title.
function summary(n) {
  const d = n.data || {};
  if (n.type.startsWith('order.')) {
    const e = d.error || {};
    const words = [d.side, d.quantity, d.ticker, d.error_message].filter((x) => x != null && x !== '').join(' ');
    // A refusal: IBKR's words, then what to do about them.
    return [words, e.message ? `IBKR said: ${e.message}` : '', e.advice ? `What to do: ${e.advice}` : ''].filter(Boolean).join(' — ');
  }
  if (n.type === 'broker.competing_session' && d.message) return String(d.message);
  if (d.ip) return `From ${d.ip}`;
  if (d.name) return String(d.name);
  return '';
}

const POLL_MS = 10000;

/**
 * bell returns the header's notification link with its unread count,
 * refreshed every few seconds while the tab is visible, and a stop
 * function. refresh() asks at once (after marking read).
 */
export function bell() {
  const count = h('span', { class: 'bell-count', hidden: true });
  const link = h('a', { href: '/notifications', class: 'bell', 'aria-label': 'Notifications' },
    h('span', { class: 'bell-icon', 'aria-hidden': 'true' }, '🔔'), count);
  let timer = null;
  let last = -1;
  async function refresh() {
    try {
      const l = await get('/notifications?unread=true&limit=1', { quietAuth: true });
      const n = l.unread_count || 0;
      count.textContent = String(n);
      count.hidden = n === 0;
      link.setAttribute('aria-label', n === 0 ? 'Notifications, none unread' : `Notifications, ${n} unread`);
      link.dataset.unread = String(n);
      if (last >= 0 && n > last) announce(`${n - last} new notification${n - last === 1 ? '' : 's'}.`);
      if (last >= 0 && n !== last) document.dispatchEvent(new CustomEvent('ordertune:notifications', { detail: n }));
      last = n;
    } catch { /* the next poll tries again */ }
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
    el: link,
    refresh,
    stop() {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}

/** page lists the caller's notifications. */
export const page = {
  title: 'Notifications',
  async render(main, ctx) {
    const region = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
    const onlyUnread = h('input', { type: 'checkbox', id: 'only-unread' });
    const allRead = h('button', { type: 'button', class: 'btn' }, 'Mark all read');
    replace(main,
      h('div', { class: 'page-head' }, h('h1', null, 'Notifications')),
      h('p', { class: 'lead' }, 'What happened to your orders, your IBKR connection and your account. ',
        h('a', { href: '/settings/notifications' }, 'Choose what you are told, and how'), '.'),
      h('div', { class: 'actions' }, h('label', { class: 'check' }, onlyUnread, ' Unread only'), allRead),
      region);

    async function load() {
      let l;
      try {
        l = await get(`/notifications${onlyUnread.checked ? '?unread=true' : ''}`);
      } catch (err) {
        replace(region, h('p', { class: 'notice notice-bad', role: 'alert' }, err.detail || err.message));
        return;
      }
      if (l.items.length === 0) {
        replace(region, h('p', { class: 'empty' }, onlyUnread.checked ? 'No unread notifications.' : 'No notifications yet.'));
        return;
      }
      replace(region, h('ul', { class: 'notifications' }, l.items.map((n) => {
        const read = h('button', { type: 'button', class: 'btn btn-quiet', 'aria-label': `Mark read: ${eventTitle(n.type)}` }, 'Mark read');
        read.addEventListener('click', () => busy(read, 'Marking…', async () => {
          await call('POST', `/notifications/${encodeURIComponent(n.id)}/read`);
          ctx.refreshBell?.();
          await load();
        }));
        const link = n.type.startsWith('order.') && n.data && n.data.id ? h('a', { href: `/confirmations/${encodeURIComponent(n.data.id)}` }, 'Open the order') : null;
        return h('li', { class: `notification${n.read_at ? '' : ' unread'}`, 'data-type': n.type, 'data-id': n.id },
          h('div', { class: 'notification-head' },
            h('strong', null, eventTitle(n.type)), ' ', dateTime(n.created_at)),
          summary(n) ? h('p', null, summary(n)) : null,
          h('div', { class: 'actions' }, link, n.read_at ? null : read));
      })));
    }
    onlyUnread.addEventListener('change', load);
    allRead.addEventListener('click', () => busy(allRead, 'Marking…', async () => {
      await call('POST', '/notifications/read-all');
      announce('All notifications marked read.');
      ctx.refreshBell?.();
      await load();
    }));
    const onNew = () => load();
    document.addEventListener('ordertune:notifications', onNew);
    ctx.setCleanup(() => document.removeEventListener('ordertune:notifications', onNew));
    await load();
  },
};
