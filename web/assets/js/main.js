// The application shell: who is signed in, the client-side router, the top
// navigation. Pages live in ./pages and render into <main>.
import { h, replace } from './dom.js';
import { get, send, onAuthLost, onStepUp } from './api.js';
import { askStepUp } from './stepup.js';
import { sessionBanner } from './sessionbanner.js';
import * as signin from './pages/signin.js';
import * as enroll from './pages/enroll.js';
import * as signup from './pages/signup.js';
import * as dashboard from './pages/dashboard.js';
import * as confirmations from './pages/confirmations.js';
import * as broker from './pages/broker.js';
import * as position from './pages/position.js';
import * as riskPage from './pages/risk.js';
import * as adminRisk from './pages/admin_risk.js';
import * as password from './pages/password.js';
import * as adminLog from './pages/admin_log.js';
import * as adminUsers from './pages/admin_users.js';
import * as adminSessions from './pages/admin_sessions.js';
import * as adminSignals from './pages/admin_signals.js';
import * as adminAudit from './pages/admin_audit.js';
import * as adminTokens from './pages/admin_tokens.js';
import * as notifications from './pages/notifications.js';
import * as notifySettings from './pages/notify_settings.js';
import * as portfolio from './pages/portfolio.js';
import * as reset from './pages/reset.js';

// access: 'public' (signed out only), 'mfa' (password given, second factor
// pending), 'user' (fully signed in), 'admin' (fully signed in admin),
// 'any' (whoever).
// The server serves index.html for exactly these paths (internal/httpapi/web.go).
export const routes = [
  { path: '/', page: dashboard.signals, access: 'user' },
  { path: '/signin', page: signin.password, access: 'public' },
  { path: '/signup', page: signup.page, access: 'public' },
  { path: '/signin/2fa', page: signin.totp, access: 'mfa' },
  { path: '/enroll', page: enroll.page, access: 'mfa' },
  { path: '/confirmations', page: confirmations.list, access: 'user' },
  { path: '/confirmations/:id', page: confirmations.detail, access: 'user' },
  { path: '/settings/broker', page: broker.page, access: 'user' },
  { path: '/settings/position-size', page: position.page, access: 'user' },
  { path: '/settings/risk', page: riskPage.page, access: 'user' },
  { path: '/settings/password', page: password.page, access: 'user' },
  { path: '/settings/notifications', page: notifySettings.preferences, access: 'user' },
  { path: '/settings/webhooks', page: notifySettings.webhooks, access: 'user' },
  { path: '/notifications', page: notifications.page, access: 'user' },
  { path: '/portfolio', page: portfolio.page, access: 'user' },
  { path: '/admin/confirmations', page: adminLog.page, access: 'admin' },
  { path: '/admin/confirmations/:id', page: confirmations.adminDetail, access: 'admin' },
  { path: '/admin/users', page: adminUsers.page, access: 'admin' },
  { path: '/admin/sessions', page: adminSessions.page, access: 'admin' },
  { path: '/admin/signals', page: adminSignals.page, access: 'admin' },
  { path: '/admin/audit', page: adminAudit.page, access: 'admin' },
  { path: '/admin/tokens', page: adminTokens.page, access: 'admin' },
  { path: '/admin/risk', page: adminRisk.page, access: 'admin' },
  { path: '/forgot-password', page: reset.forgot, access: 'public' },
  // Any: a reset link may be opened in a browser signed in to another account.
  { path: '/reset-password', page: reset.reset, access: 'any' },
];

const MFA_HINT = 'ordertune.mfa';
// SESSION_HINT marks a browser that signed in: the session cookie is
// HttpOnly, so without this the first load of a signed-out browser would
// ask GET /me only to be told 401.
const SESSION_HINT = 'ordertune.session';

const state = {
  user: null, // GET /me when fully signed in
  stage: 'out', // 'out' | 'mfa' | 'in'
  cleanup: null,
  first: true,
  bell: null, // the header's notification bell while signed in
  banner: null, // the competing-login banner while signed in
};

function match(path) {
  for (const r of routes) {
    const want = r.path.split('/');
    const got = path.split('/');
    if (want.length !== got.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length; i++) {
      if (want[i].startsWith(':')) {
        if (!got[i]) { ok = false; break; }
        params[want[i].slice(1)] = decodeURIComponent(got[i]);
      } else if (want[i] !== got[i]) { ok = false; break; }
    }
    if (ok) return { route: r, params };
  }
  return null;
}

/** navigate shows path without reloading the page. */
export function navigate(path, { replace: rep = false } = {}) {
  if (rep) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

/** mfaPage is where a password-only session goes next. */
function mfaPage() {
  return sessionStorage.getItem(MFA_HINT) === 'enroll' ? '/enroll' : '/signin/2fa';
}

/** signedIn records a fully authenticated session and refreshes the user. */
async function signedIn() {
  sessionStorage.removeItem(MFA_HINT);
  localStorage.setItem(SESSION_HINT, '1');
  state.user = await get('/me');
  state.stage = 'in';
}

/** passwordAccepted records a session that still needs its second factor. */
function passwordAccepted(mfa) {
  sessionStorage.setItem(MFA_HINT, mfa === 'enroll' ? 'enroll' : 'required');
  localStorage.setItem(SESSION_HINT, '1');
  state.stage = 'mfa';
  state.user = null;
}

/** signedOutHere forgets a session the server has already ended. */
function signedOutHere() {
  state.user = null;
  state.stage = 'out';
  sessionStorage.removeItem(MFA_HINT);
  localStorage.removeItem(SESSION_HINT);
}

async function signOut() {
  try { await send('POST', '/auth/logout', undefined, { quietAuth: true }); } catch { /* the session is gone either way */ }
  state.user = null;
  state.stage = 'out';
  sessionStorage.removeItem(MFA_HINT);
  localStorage.removeItem(SESSION_HINT);
  navigate('/signin');
}

function navLink(href, text, current) {
  const here = current === href || (href !== '/' && current.startsWith(`${href}/`));
  return h('li', null, h('a', { href, 'aria-current': here ? 'page' : null }, text));
}

function renderTopbar(path) {
  const bar = document.getElementById('topbar');
  if (state.stage !== 'in') {
    bar.hidden = true;
    bar.replaceChildren();
    if (state.bell) {
      state.bell.stop();
      state.bell = null;
    }
    if (state.banner) {
      state.banner.stop();
      state.banner = null;
    }
    return;
  }
  if (!state.bell) state.bell = notifications.bell();
  if (!state.banner) state.banner = sessionBanner();
  else state.banner.refresh();
  bar.hidden = false;
  const u = state.user;
  const menuId = 'primary-nav';
  const toggle = h('button', {
    type: 'button', class: 'btn menu-toggle', 'aria-expanded': 'false', 'aria-controls': menuId,
    onclick: (e) => {
      const open = e.currentTarget.getAttribute('aria-expanded') !== 'true';
      e.currentTarget.setAttribute('aria-expanded', String(open));
      document.getElementById(menuId).classList.toggle('open', open);
    },
  }, 'Menu');
  const groups = [
    h('ul', { class: 'nav-group' },
      navLink('/', 'Signals', path),
      navLink('/confirmations', 'My confirmations', path),
      navLink('/portfolio', 'Portfolio', path),
      navLink('/settings/broker', 'Broker', path),
      navLink('/settings/position-size', 'Position size', path),
      navLink('/settings/risk', 'Risk', path),
      navLink('/settings/password', 'Password', path),
      navLink('/settings/notifications', 'Notifications', path),
      navLink('/settings/webhooks', 'Webhooks', path)),
  ];
  if (u.role === 'admin') {
    groups.push(h('ul', { class: 'nav-group nav-admin', 'aria-label': 'Admin' },
      h('li', { class: 'nav-label', 'aria-hidden': 'true' }, 'Admin'),
      navLink('/admin/confirmations', 'Log', path),
      navLink('/admin/users', 'Users', path),
      navLink('/admin/sessions', 'Sessions', path),
      navLink('/admin/signals', 'Publish', path),
      navLink('/admin/audit', 'Audit', path),
      navLink('/admin/tokens', 'Tokens', path),
      navLink('/admin/risk', 'Platform risk', path)));
  }
  const who = () => h('span', { class: 'who' }, u.email, u.role === 'admin' ? h('span', { class: 'role' }, ' · admin') : null);
  replace(bar,
    h('div', { class: 'topbar-inner' },
      h('div', { class: 'topbar-row' },
        h('a', { class: 'brand', href: '/' }, h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 24, height: 24 }), 'Ordertune'),
        state.bell.el,
        h('div', { class: 'account account-wide' }, who(),
          h('button', { type: 'button', class: 'btn btn-quiet', onclick: signOut }, 'Sign out')),
        toggle),
      h('nav', { id: menuId, class: 'nav', 'aria-label': 'Main' },
        groups,
        h('div', { class: 'account account-menu' }, who(),
          h('button', { type: 'button', class: 'btn btn-quiet', onclick: signOut }, 'Sign out')))),
    state.banner.el);
}

function forbiddenPage(main) {
  replace(main,
    h('h1', { tabindex: '-1' }, 'Admins only'),
    h('p', { class: 'notice notice-bad', role: 'alert' }, 'This page is for Ordertune admins. Your account is a subscriber account.'),
    h('p', null, h('a', { href: '/' }, 'Back to the signals')));
  return 'Admins only';
}

function notFoundPage(main) {
  replace(main,
    h('h1', { tabindex: '-1' }, 'Page not found'),
    h('p', null, 'There is no page at this address. ', h('a', { href: '/' }, 'Go to the signals'), '.'));
  return 'Not found';
}

/** render shows the page for the current location. */
export async function render() {
  const path = location.pathname;
  const main = document.getElementById('main');
  if (state.cleanup) {
    state.cleanup();
    state.cleanup = null;
  }
  const m = match(path);
  if (m) {
    const { access } = m.route;
    if (access === 'public' && state.stage === 'in') return navigate('/', { replace: true });
    if (access === 'public' && state.stage === 'mfa') return navigate(mfaPage(), { replace: true });
    if (access === 'mfa' && state.stage === 'in') return navigate('/', { replace: true });
    if (access === 'mfa' && state.stage === 'out') return navigate('/signin', { replace: true });
    if ((access === 'user' || access === 'admin') && state.stage === 'out') {
      const next = path === '/' ? '' : `?next=${encodeURIComponent(path + location.search)}`;
      return navigate(`/signin${next}`, { replace: true });
    }
    if ((access === 'user' || access === 'admin') && state.stage === 'mfa') return navigate(mfaPage(), { replace: true });
  }
  renderTopbar(path);
  main.replaceChildren();
  let title;
  const ctx = {
    user: state.user,
    params: m ? m.params : {},
    query: new URLSearchParams(location.search),
    navigate,
    passwordAccepted,
    signedIn,
    signOut,
    signedOutHere,
    setCleanup: (fn) => { state.cleanup = fn; },
    refreshBell: () => state.bell?.refresh(),
  };
  if (!m) title = notFoundPage(main);
  else if (m.route.access === 'admin' && state.user.role !== 'admin') title = forbiddenPage(main);
  else title = m.route.page.title;
  document.title = `${title} · Ordertune`;
  const focusHeading = !state.first;
  state.first = false;
  if (m && !(m.route.access === 'admin' && state.user.role !== 'admin')) {
    await m.route.page.render(main, ctx);
  }
  // A page that put the cursor somewhere useful keeps it there.
  if (focusHeading && !(main.contains(document.activeElement) && document.activeElement !== main)) {
    const h1 = main.querySelector('h1');
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus();
    }
  }
}

// Same-origin links navigate inside the app; downloads and the API do not.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/assets/')) return;
  if (url.hash && url.pathname === location.pathname) return;
  e.preventDefault();
  document.getElementById('topbar').querySelector('.nav')?.classList.remove('open');
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => render());

// Escape closes the phone menu and gives focus back to its button.
document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape') return;
  const nav = document.getElementById('primary-nav');
  if (!nav || !nav.classList.contains('open')) return;
  nav.classList.remove('open');
  const toggle = document.querySelector('.menu-toggle');
  if (toggle) {
    toggle.setAttribute('aria-expanded', 'false');
    toggle.focus();
  }
});

onAuthLost((code) => {
  if (code === 'mfa_required') {
    state.stage = 'mfa';
    navigate(mfaPage(), { replace: true });
  } else if (state.stage !== 'out') {
    localStorage.removeItem(SESSION_HINT);
    state.stage = 'out';
    state.user = null;
    navigate('/signin', { replace: true });
  }
});

onStepUp(askStepUp);

async function boot() {
  if (!localStorage.getItem(SESSION_HINT)) {
    state.stage = 'out';
    await render();
    return;
  }
  try {
    const me = await get('/me', { quietAuth: true });
    if (me && me.totp_enabled === false) {
      sessionStorage.setItem(MFA_HINT, 'enroll');
      state.stage = 'mfa';
    } else if (sessionStorage.getItem(MFA_HINT)) {
      // /me answers a password-only session too; this tab signed in with
      // a password and has not given its code yet.
      state.stage = 'mfa';
    } else {
      state.user = me;
      state.stage = 'in';
    }
  } catch (e) {
    if (e.code === 'mfa_required') state.stage = 'mfa';
    else {
      state.stage = 'out';
      localStorage.removeItem(SESSION_HINT);
    }
  }
  await render();
}

boot();
