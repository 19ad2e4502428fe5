// Shared by the teacher page and the IT dashboard: the sign-in flow, the API, the
// live event stream, dates, and building DOM from text only (every text
// from the server, such as an override's reason, goes in as text).
//
// No user-facing string lives here: they are all in i18n.js.

import { strings } from './i18n.js';

// --- Language -------------------------------------------------------------

const LANG_KEY = 'borne.lang';

/** 'fr' or 'en': a choice made on this browser, else the browser's
 *  preferred language among the two, else `fallback`. */
export function pickLanguage(fallback) {
  try {
    const chosen = localStorage.getItem(LANG_KEY);
    if (chosen && strings[chosen]) return chosen;
  } catch (_) { /* storage disabled */ }
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ''];
  for (const l of prefs) {
    const primary = String(l).toLowerCase().split('-')[0];
    if (strings[primary]) return primary;
  }
  return fallback;
}

export function chooseLanguage(lang) {
  try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* ignore */ }
}

/** Fills every [data-i18n] element's text, and [data-i18n-placeholder]. */
export function translateStatic(t) {
  document.documentElement.lang = t.lang;
  for (const el of document.querySelectorAll('[data-i18n]')) {
    const v = t[el.dataset.i18n];
    if (typeof v === 'string') el.textContent = v;
  }
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
    const v = t[el.dataset.i18nPlaceholder];
    if (typeof v === 'string') el.placeholder = v;
  }
  for (const el of document.querySelectorAll('[data-i18n-label]')) {
    const v = t[el.dataset.i18nLabel];
    if (typeof v === 'string') el.setAttribute('aria-label', v);
  }
}

// --- DOM --------------------------------------------------------------------

/** h('p', {class: 'x', onclick: f}, 'text', child...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** Sets text only when it changed (no needless screen-reader chatter). */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
  // Wi-Fi fan: three arcs and a dot.
  on: ['M2 8.8a15 15 0 0 1 20 0', 'M5 12.5a10 10 0 0 1 14 0', 'M8.5 16.1a5 5 0 0 1 7 0', 'M12 19.5h.01'],
  // The same, struck through.
  off: ['M2 2l20 20', 'M8.5 16.1a5 5 0 0 1 7 0', 'M5 12.5a10 10 0 0 1 5.2-2.8', 'M2 8.8a15 15 0 0 1 4.2-2.7',
    'M10.7 5.1A15 15 0 0 1 22 8.8', 'M16.8 10.4a10 10 0 0 1 2.2 2.1', 'M12 19.5h.01'],
  lock: ['M6 11h12v10H6z', 'M8.5 11V7.5a3.5 3.5 0 0 1 7 0V11'],
  shield: ['M12 3l8 3v6c0 4.5-3.4 8.2-8 9-4.6-.8-8-4.5-8-9V6z', 'M12 8v5', 'M12 16.5h.01'],
  warn: ['M12 3l10 18H2z', 'M12 10v5', 'M12 18h.01'],
  clock: ['M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z', 'M12 7v5l3 2'],
  sync: ['M20 12a8 8 0 0 1-14.2 5', 'M4 12a8 8 0 0 1 14.2-5', 'M18.5 3v4h-4', 'M5.5 21v-4h4'],
  check: ['M4 12.5l5 5L20 6.5'],
};

/** A decorative line icon (hidden from screen readers: the text says it). */
export function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', `icon icon-${name}${cls ? ' ' + cls : ''}`);
  for (const d of ICONS[name] || []) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.append(p);
  }
  return svg;
}

// --- Token ----------------------------------------------------------------

/** Reads `#token=...` from the address and removes it from the address bar
 *  and the history, so it is not left visible or bookmarked. */
function takeTokenFromFragment() {
  const hash = location.hash.replace(/^#/, '');
  if (!hash) return null;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (token === null) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return token.trim() || null;
}

/** Accepts a pasted token, or a pasted sign-in link holding one. */
function cleanPastedToken(text) {
  const s = String(text || '').trim();
  const m = s.match(/[#&?]token=([^&\s]+)/);
  return m ? decodeURIComponent(m[1]) : s;
}

function tokenStore(key) {
  return {
    get() { try { return localStorage.getItem(key); } catch (_) { return null; } },
    set(v) { try { localStorage.setItem(key, v); } catch (_) { /* private mode: session only */ } },
    clear() { try { localStorage.removeItem(key); } catch (_) { /* ignore */ } },
  };
}

// --- Sign-in with the identity provider -------------------------------------

/** What /auth/session says: {oidc: {label, available} | null, user, csrf}. */
async function signInState() {
  try {
    const r = await fetch('/auth/session', { cache: 'no-store', credentials: 'same-origin' });
    if (r.ok) return await r.json();
  } catch (_) { /* the server is away: offer what needs no server */ }
  return { oidc: null, user: null };
}

/** Whether `token` is a sign-in session rather than a bearer token. */
function isCookieSession(token) {
  return token !== null && typeof token === 'object';
}

/** Fills the sign-in button (or says sign-in is unavailable) when the
 *  server offers sign-in with the identity provider. */
function renderSso(el, state, next, t) {
  if (!state || !state.oidc) {
    el.hidden = true;
    return;
  }
  const href = `/auth/login?next=${encodeURIComponent(next)}`;
  setChildren(el,
    state.oidc.available
      ? h('a', { id: 'sso-button', class: 'primary sso-button', href }, state.oidc.label || t.ssoButton)
      : h('p', { id: 'sso-unavailable', class: 'notice notice-warn' }, t.ssoUnavailable),
    h('p', { class: 'sso-or' }, t.ssoOr));
  el.hidden = false;
}

/** Ends a sign-in session; resolves to where to go next (the provider's
 *  sign-out page when it has one). */
async function endCookieSession(session, fallback) {
  try {
    const r = await fetch('/auth/logout', {
      method: 'POST', cache: 'no-store', credentials: 'same-origin',
      headers: { 'X-CSRF-Token': session.csrf, Accept: 'application/json' },
    });
    const body = await r.json();
    if (r.ok && body.redirect) return body.redirect;
  } catch (_) { /* the cookie ends with the browser anyway */ }
  return fallback;
}

// --- The sign-in flow ---------------------------------------------------------

/**
 * The sign-in both pages share: the pasted token or sign-in link, the
 * `#token=` of a link opened (also in a tab already showing the page), the
 * token kept on this browser (forgotten here when another tab signs out:
 * a shared classroom computer), sign-in with the identity provider, the
 * sign-out button, and what a failed start or an ended session shows.
 *
 * `ui` holds the elements both pages have (signin, signinForm, tokenInput,
 * signinMessage, sso, signout, who, live, app, appMessage); `home` is the
 * page's path (where the identity provider sends the browser back);
 * `start(token, typed)` signs in with a token (a string) or a sign-in
 * session ({csrf}) and calls `signedIn` or `startFailed`; `reset()` clears
 * the page's signed-in views; `errorText(e)` says why a start failed.
 */
export function signInFlow({ ui, t, storeKey, home, start, reset, errorText }) {
  const store = tokenStore(storeKey);
  /** Sign-in with the identity provider, as /auth/session described it at start. */
  let sso = null;
  /** The token (or sign-in session) of the page now signed in, else null. */
  let active = null;

  const flow = {
    /** Back to the sign-in form, with a message (tone: 'warn' or 'info'). */
    show(message, tone) {
      active = null;
      reset();
      ui.signout.hidden = true;
      ui.who.hidden = true;
      ui.live.hidden = true;
      ui.signin.hidden = false;
      ui.signinMessage.hidden = !message;
      ui.signinMessage.className = `notice notice-${tone || 'warn'}`;
      setText(ui.signinMessage, message || '');
      renderSso(ui.sso, sso, home, t);
      ui.tokenInput.value = '';
      ui.tokenInput.focus();
    },

    /** Signs out on this browser (the kept token is forgotten). */
    signOut(message, tone) {
      store.clear();
      flow.show(message, tone);
    },

    /** The session ended at the server (token revoked or expired, sign-in
     *  session over): back to the form, saying which. */
    ended(token) {
      flow.signOut(isCookieSession(token) ? t.ssoEnded : t.sessionExpired);
    },

    /** `start` was accepted: keep a bearer token on this browser (a sign-in
     *  session lives in its cookie) and show the signed-in header. */
    signedIn(token) {
      active = token;
      if (!isCookieSession(token)) store.set(token);
      ui.signin.hidden = true;
      ui.signout.hidden = false;
      ui.who.hidden = false;
      // Until the new session's event stream says how it is.
      ui.live.hidden = true;
    },

    /** `start` failed. A token the server refuses is forgotten; a server
     *  that cannot be reached is tried again (the token is kept) unless the
     *  token was just typed, which is answered at once. */
    startFailed(e, token, typed) {
      if (e.status === 401 && isCookieSession(token)) {
        flow.show(t.ssoEnded);
        return;
      }
      if (e.status === 401) store.clear();
      if (e.status === 0 && !typed) {
        ui.signin.hidden = true;
        showNotice(ui.appMessage, t.networkError, 'warn');
        ui.app.hidden = false;
        setTimeout(() => start(token, false), 5000);
        return;
      }
      flow.show(e.status === 401 && e.code !== 'token_expired' ? t.tokenRejected : errorText(e));
    },

    /** Wires the form and the buttons, then signs in with what there is: a
     *  link's token, the kept token, a sign-in session, else the form. */
    begin() {
      ui.signout.addEventListener('click', userSignOut);
      ui.signinForm.addEventListener('submit', (e) => {
        e.preventDefault();
        const token = cleanPastedToken(ui.tokenInput.value);
        if (!token) {
          ui.signinMessage.hidden = false;
          setText(ui.signinMessage, t.tokenMissing);
          ui.tokenInput.focus();
          return;
        }
        start(token, true);
      });
      window.addEventListener('storage', (e) => {
        if (e.key === storeKey && !e.newValue && active !== null) flow.show(t.signedOut, 'info');
      });
      // A sign-in link opened in a tab already showing the page changes
      // only the fragment: no reload, so listen for it.
      window.addEventListener('hashchange', () => {
        const fresh = takeTokenFromFragment();
        if (fresh) start(fresh, true);
      });
      const token = takeTokenFromFragment() || store.get();
      signInState().then((state) => {
        sso = state;
        if (token) start(token, false);
        else if (state.user && state.csrf) start({ csrf: state.csrf }, false);
        else flow.show(null);
      });
    },
  };

  /** The sign-out button: a sign-in session also ends at the server, and
   *  the browser goes to the provider's sign-out page when it has one. */
  async function userSignOut() {
    if (isCookieSession(active)) {
      const session = active;
      flow.show(t.signedOut, 'info');
      location.assign(await endCookieSession(session, home));
      return;
    }
    flow.signOut(t.signedOut, 'info');
  }

  return flow;
}

/** Fills a notice box (tone: 'info' or 'warn') and shows it. */
export function showNotice(el, content, tone) {
  el.className = `notice notice-${tone || 'info'}`;
  setChildren(el, content);
  el.hidden = false;
}

/** The live-updates badge: 'connecting', 'live' or 'reconnecting'. */
export function showLive(el, state, t) {
  el.hidden = false;
  el.className = `live live-${state}`;
  setText(el, state === 'live' ? t.live : state === 'connecting' ? t.connecting : t.reconnecting);
}

// --- Server clock -----------------------------------------------------------

// Countdowns use the server's clock: a classroom PC whose clock is off by
// minutes must still show the right time left. The offset is estimated
// from each API answer's Date header (whole seconds, so only corrected
// beyond 2 s).
let skew = 0;
function noteServerDate(response, sentAt) {
  const d = Date.parse(response.headers.get('Date') || '');
  if (Number.isNaN(d)) return;
  const mid = (sentAt + Date.now()) / 2;
  const diff = d + 500 - mid;
  skew = Math.abs(diff) > 2000 ? diff : 0;
}
export function now() { return Date.now() + skew; }

// --- API ------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.error || (status === 0 ? 'network' : 'http');
  }
}

/** What api() and followEvents() send to authenticate: a bearer token
 *  (a string), or a sign-in session with the identity provider ({csrf}),
 *  which rides on its HttpOnly cookie and proves with the CSRF token that
 *  a write comes from this page. */
function authenticate(token, method, headers) {
  if (typeof token === 'string') {
    headers.Authorization = `Bearer ${token}`;
    return 'omit';
  }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = token.csrf;
  return 'same-origin';
}

/** Calls the API; resolves to the JSON answer, rejects with ApiError
 *  (status 0 when the server could not be reached). */
export async function api(token, method, path, body) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store' };
  init.credentials = authenticate(token, method, headers);
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const sentAt = Date.now();
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: 'network', message: String(e && e.message || e) });
  }
  noteServerDate(response, sentAt);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const err = new ApiError(response.status, data);
    err.retryAfter = Number(response.headers.get('Retry-After')) || null;
    throw err;
  }
  return data;
}

// --- Live events -------------------------------------------------------------

/**
 * Follows GET /api/v1/events with fetch() (EventSource cannot send the
 * Authorization header), parsing the Server-Sent Events format itself.
 * Reconnects with exponential backoff when the stream drops or stalls
 * (the server sends a keep-alive comment every 15 s); the server starts
 * every stream with the status of every visible classroom, so nothing
 * missed during a drop stays wrong.
 *
 * callbacks: onStatus(status), onState('connecting'|'live'|'reconnecting'),
 * onUnauthorized().
 */
export function followEvents(token, { onStatus, onState, onUnauthorized }) {
  const STALL_MS = 40000;
  let stopped = false;
  let controller = null;
  let attempt = 0;
  let retryTimer = null;

  const schedule = (minDelay) => {
    if (stopped) return;
    const base = Math.min(30000, 1000 * 2 ** attempt);
    const delay = Math.max(minDelay || 0, base * (0.8 + Math.random() * 0.4));
    attempt += 1;
    onState('reconnecting');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  };

  async function connect() {
    retryTimer = null;
    if (stopped) return;
    controller = new AbortController();
    const mine = controller;
    let stallTimer = null;
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => mine.abort(), STALL_MS);
    };
    try {
      armStall();
      const headers = { Accept: 'text/event-stream' };
      const credentials = authenticate(token, 'GET', headers);
      const response = await fetch('/api/v1/events', {
        headers,
        cache: 'no-store',
        credentials,
        signal: mine.signal,
      });
      if (response.status === 401) {
        clearTimeout(stallTimer);
        stopped = true;
        onUnauthorized();
        return;
      }
      if (!response.ok || !response.body) {
        clearTimeout(stallTimer);
        const retryAfter = Number(response.headers.get('Retry-After')) || 0;
        schedule(retryAfter * 1000);
        return;
      }
      onState('live');
      attempt = 0;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      let event = '';
      let data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        armStall();
        buffer += value;
        let nl;
        while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (data.length && (event === 'status' || event === '')) {
              try { onStatus(JSON.parse(data.join('\n'))); } catch (e) { console.warn('bad event', e); }
            }
            event = '';
            data = [];
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? '' : line.slice(colon + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'event') event = val;
          else if (field === 'data') data.push(val);
        }
      }
    } catch (_) {
      // Network error, abort (stall or stop): fall through to reconnect.
    }
    clearTimeout(stallTimer);
    if (!stopped) schedule(0);
  }

  // Back online or back in front: try at once rather than wait out a backoff.
  const kick = () => {
    if (stopped || !retryTimer) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    attempt = 0;
    connect();
  };
  window.addEventListener('online', kick);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) kick(); });

  onState('connecting');
  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      if (controller) controller.abort();
      window.removeEventListener('online', kick);
    },
  };
}

// --- Times --------------------------------------------------------------------

const fmtCache = new Map();
function fmt(locale, opts) {
  const key = locale + JSON.stringify(opts);
  let f = fmtCache.get(key);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat(locale, opts);
    } catch (_) {
      // Unknown time zone in this browser: fall back to the browser's.
      const { timeZone, ...rest } = opts;
      f = new Intl.DateTimeFormat(locale, rest);
    }
    fmtCache.set(key, f);
  }
  return f;
}

function dayKey(ms, tz) {
  // en-CA formats as YYYY-MM-DD.
  return fmt('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(ms);
}

function daysBetween(a, b) {
  return Math.round((Date.parse(b + 'T00:00:00Z') - Date.parse(a + 'T00:00:00Z')) / 86400000);
}

/** "08:30", "demain 08:30", "lundi 08:30" or "lundi 5 janvier 08:30",
 *  in the classroom's time zone. */
export function formatWhen(iso, tz, t) {
  const ms = typeof iso === 'number' ? iso : Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  const time = fmt(t.locale, { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ms);
  const days = daysBetween(dayKey(now(), tz), dayKey(ms, tz));
  if (days === 0) return time;
  if (days === 1) return t.tomorrowAt(time);
  if (days > 1 && days < 7) {
    return t.dayAt(fmt(t.locale, { timeZone: tz, weekday: 'long' }).format(ms), time);
  }
  return t.dayAt(fmt(t.locale, { timeZone: tz, weekday: 'long', day: 'numeric', month: 'long' }).format(ms), time);
}

/** Date and time to the second, for logs and tables. */
export function formatStamp(iso, tz, t) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  return fmt(t.locale, {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  }).format(ms);
}

/** Time left as "1 h 05 min", "12 min 30 s", "45 s". */
export function formatLeft(ms, t) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  if (hours > 0) return t.leftHours(hours, String(minutes).padStart(2, '0'));
  if (minutes >= 10) return t.leftMinutes(minutes);
  if (minutes > 0) return t.leftMinutesSeconds(minutes, String(seconds).padStart(2, '0'));
  return t.leftSeconds(seconds);
}

/** The instant a `datetime-local` value names in time zone `tz`. */
export function zonedToInstant(value, tz) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || '');
  if (!m) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  const offsetAt = (ms) => {
    const p = {};
    for (const part of fmt('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(ms)) p[part.type] = part.value;
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second) - ms;
  };
  let guess = wall - offsetAt(wall);
  guess = wall - offsetAt(guess);
  return new Date(guess);
}

/** A `datetime-local` value for an instant in time zone `tz`. */
export function instantToLocalInput(ms, tz) {
  const p = {};
  for (const part of fmt('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit',
  }).formatToParts(ms)) p[part.type] = part.value;
  return `${p.year}-${p.month}-${p.day}T${String(+p.hour % 24).padStart(2, '0')}:${p.minute}`;
}

// --- Status helpers --------------------------------------------------------------

/** What the access points of a classroom are doing compared with what is wanted. */
export function apSummary(status) {
  const aps = status.access_points || [];
  const unreachable = aps.filter((a) => !a.reachable);
  const applying = aps.filter((a) => a.reachable && a.observed !== status.wifi);
  return { total: aps.length, unreachable, applying };
}
