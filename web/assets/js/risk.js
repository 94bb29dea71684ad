// Risk limits and switches as the pages show them: the labels of the four
// limits, the confirm dialog's limit lines, and the banner that says why
// Confirm buttons are disabled (paused, suspended, halted).
import { h, money, plain } from './dom.js';

/** LIMITS names the four limits in the server's order, with their labels
 * and whether they are dollars. */
export const LIMITS = [
  { name: 'max_order_value', label: 'Max order value', dollars: true },
  { name: 'max_shares_per_order', label: 'Max shares per order', dollars: false },
  { name: 'max_orders_per_day', label: 'Max orders per day', dollars: false },
  { name: 'max_daily_value', label: 'Max daily value', dollars: true },
];

/** limitValue renders a limit's value: dollars or a plain number. */
export function limitValue(name, v) {
  const l = LIMITS.find((x) => x.name === name);
  return l && l.dollars ? money(v) : plain(v);
}

/** limitLines is the confirm dialog's list of the preview's limit lines. */
export function limitLines(lines) {
  if (!lines || !lines.length) return null;
  return h('section', { class: 'limit-lines', 'aria-label': 'Risk limits' },
    h('h3', { class: 'small' }, 'Your risk limits'),
    h('ul', { class: 'plain-list' }, lines.map((l) => {
      const label = (LIMITS.find((x) => x.name === l.name) || { label: l.name }).label;
      return h('li', { 'data-limit': l.name, class: l.ok ? 'limit-ok' : 'limit-bad' },
        h('span', null, l.ok ? '✓ ' : '✗ '),
        `${label}: this order makes it ${limitValue(l.name, l.would_be)} of ${limitValue(l.name, l.limit)}`,
        l.ok ? null : h('strong', null, ' — over the limit'));
    })));
}

/**
 * blocked says why confirms are refused now, from GET /settings/risk and
 * the active mode: {entries, exits} each a reason or null. A halt of the
 * mode refuses both; a pause or a suspension only entries.
 */
export function blocked(risk, mode) {
  if (!risk) return { entries: null, exits: null };
  if (mode && risk.halted && risk.halted[mode]) {
    const why = `Trading in ${mode} accounts is halted by the platform: ${risk.halt_reason || 'no reason given'}.`;
    return { entries: why, exits: why };
  }
  if (risk.suspended) {
    return { entries: `An administrator suspended your trading: ${risk.suspended_reason || 'no reason given'}. Exits of what you hold still go through.`, exits: null };
  }
  if (risk.trading_paused) {
    return { entries: 'You paused trading in Settings → Risk. Exits of what you hold still go through.', exits: null };
  }
  return { entries: null, exits: null };
}

/** banner is the notice shown while confirms are refused, or null. */
export function banner(b) {
  const why = b.entries || b.exits;
  if (!why) return null;
  return h('p', { class: 'notice notice-warn risk-banner', role: 'status', id: 'risk-banner' }, why);
}
