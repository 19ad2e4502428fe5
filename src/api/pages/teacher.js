// The teacher page: one card per classroom the token may switch, with one
// big on/off button, the length of the session, a live countdown to the
// automatic switch-off, "+15 min", and, always, why in words.

import { strings } from './i18n.js';
import {
  api, apSummary, chooseLanguage, followEvents, formatLeft, formatWhen, h, icon, now, pickLanguage, setChildren,
  setText, showLive, showNotice, signInFlow, translateStatic,
} from './common.js';

const lang = pickLanguage('fr');
const t = strings[lang];
const $ = (id) => document.getElementById(id);

const ui = {
  signin: $('signin'), signinForm: $('signin-form'), tokenInput: $('token-input'), signinMessage: $('signin-message'),
  sso: $('sso'),
  app: $('app'), appTitle: $('app-title'), appMessage: $('app-message'), cards: $('classrooms'),
  live: $('live'), who: $('who'), lang: $('lang'), signout: $('signout'),
};

/** The signed-in session: token, user, cards by classroom id, event stream. */
let current = null;

// --- Sign-in ------------------------------------------------------------------

function resetViews() {
  if (current && current.stream) current.stream.stop();
  current = null;
  ui.app.hidden = true;
  ui.cards.replaceChildren();
}

const signin = signInFlow({
  ui, t, storeKey: 'borne.teacher.token', home: '/', start, reset: resetViews, errorText: startupError,
});

function startupError(e) {
  if (e.status === 401) return e.code === 'token_expired' ? t.tokenExpired : t.tokenRejected;
  if (e.status === 429) return t.tooManyAttempts(e.retryAfter);
  if (e.status === 0) return t.networkError;
  return t.genericError(e.message);
}

async function start(token, typed) {
  let me;
  let list;
  try {
    me = await api(token, 'GET', '/api/v1/me');
    list = await api(token, 'GET', '/api/v1/classrooms');
  } catch (e) {
    signin.startFailed(e, token, typed);
    return;
  }
  resetViews();
  signin.signedIn(token);
  current = { token, me, cards: new Map(), stream: null };
  ui.app.hidden = false;
  setText(ui.who, t.signedInAs(me.name));
  hideAppMessage();

  if (me.role === 'viewer') {
    setText(ui.appTitle, t.teacherHeading(0));
    showNotice(ui.appMessage, [t.viewerUseDashboard, ' ', h('a', { href: '/admin' }, t.dashboardLink)], 'info');
    return;
  }
  const classrooms = list.classrooms || [];
  setText(ui.appTitle, t.teacherHeading(classrooms.length));
  if (classrooms.length === 0) showNotice(ui.appMessage, t.noClassrooms, 'info');
  for (const s of classrooms) update(s);
  const session = current;
  current.stream = followEvents(token, {
    onStatus: (s) => { if (current === session) update(s); },
    onState: (state) => { if (current === session) showLive(ui.live, state, t); },
    onUnauthorized: () => { if (current === session) signin.ended(session.token); },
  });
}

function hideAppMessage() {
  ui.appMessage.hidden = true;
  ui.appMessage.replaceChildren();
}

// --- Cards --------------------------------------------------------------------

function durationOptions(limits) {
  const set = new Set();
  for (let m = 30; m <= limits.max; m += 30) set.add(m);
  if (limits.default > 0 && limits.default <= limits.max) set.add(limits.default);
  if (limits.max > 0) set.add(limits.max);
  return [...set].sort((a, b) => a - b);
}

function createCard(s) {
  const base = `c-${s.id}`;
  const card = { id: s.id, status: s, busy: false, view: null, iconName: '', limits: '' };
  card.name = h('h2', { id: `${base}-name`, class: 'card-title' });
  card.school = h('p', { class: 'card-school' });
  card.stateIcon = h('span', { class: 'state-icon' });
  card.stateText = h('span', { class: 'state-text' });
  card.whyIcon = h('span', { class: 'why-icon' });
  card.whyText = h('span', { id: `${base}-why` });
  // State and reason are announced together when they change.
  card.live = h('div', { class: 'state-block', 'aria-live': 'polite', 'aria-atomic': 'true' },
    h('p', { class: 'state' }, card.stateIcon, card.stateText),
    h('p', { class: 'why' }, card.whyIcon, card.whyText));
  card.countdown = h('p', { class: 'countdown', hidden: true });
  card.planned = h('ul', { class: 'planned-list', hidden: true });
  card.plannedKey = '';
  card.select = h('select', { id: `${base}-minutes`, 'aria-describedby': `${base}-hint` });
  card.select.addEventListener('change', () => tick(card));
  card.hint = h('span', { id: `${base}-hint`, class: 'duration-hint' });
  card.durationBox = h('div', { class: 'duration' },
    h('label', { for: `${base}-minutes` }, t.durationLabel), card.select, card.hint);
  card.toggle = h('button', {
    type: 'button', class: 'toggle', 'aria-describedby': `${base}-why`, onclick: () => toggle(card),
  });
  card.extend = h('button', {
    type: 'button', class: 'extend', 'aria-label': t.extendLabel, onclick: () => extend(card),
  }, t.extend15);
  card.apply = h('p', { class: 'apply', 'aria-live': 'polite', hidden: true });
  card.message = h('p', { class: 'card-message', role: 'alert', hidden: true });
  card.root = h('article', { class: 'card', 'aria-labelledby': `${base}-name`, dataset: { classroom: s.id } },
    h('header', { class: 'card-head' }, card.name, card.school),
    card.live,
    card.countdown,
    card.planned,
    h('div', { class: 'controls' }, card.durationBox, h('div', { class: 'buttons' }, card.toggle, card.extend)),
    card.apply,
    card.message);
  return card;
}

function update(s) {
  if (!current) return;
  let card = current.cards.get(s.id);
  if (!card) {
    card = createCard(s);
    current.cards.set(s.id, card);
    ui.cards.append(card.root);
  }
  card.status = s;
  render(card);
}

/** What the card says and allows, from a Status. */
function describe(s) {
  const tz = s.timezone;
  const when = (x) => formatWhen(x, tz, t);
  const on = s.wifi === 'on';
  const v = {
    tone: on ? 'on' : 'off', whyIcon: 'clock', action: on ? 'off' : 'on', canToggle: true, why: '',
    countdownTo: null, capped: false, extendable: false,
  };
  const nextChange = s.next_change ? Date.parse(s.next_change.at) : null;
  switch (s.reason) {
    case 'override': {
      const o = s.override || { reason: '', until: s.until };
      v.canToggle = false;
      v.tone = on ? 'on' : 'blocked';
      v.whyIcon = 'shield';
      const until = o.until ? when(o.until) : null;
      v.why = on ? t.overrideOn(o.reason, until) : t.overrideOff(o.reason, until);
      break;
    }
    case 'locked':
      v.canToggle = false;
      v.tone = 'blocked';
      v.whyIcon = 'lock';
      v.why = s.until ? t.lockedUntil(when(s.until), s.closed_day) : t.lockedNoEnd(s.closed_day);
      break;
    case 'teacher':
      if (on) {
        v.why = s.session && current && s.session.by !== current.me.name ? t.teacherOnBy(s.session.by) : t.teacherOn;
        v.countdownTo = Date.parse(s.until);
        v.capped = nextChange !== null && v.countdownTo >= nextChange;
        v.extendable = true;
      } else {
        v.why = t.teacherOff(when(s.until));
      }
      break;
    default: // schedule
      if (on) {
        v.why = t.scheduleOn;
        if (nextChange !== null && s.next_change.mode !== 'on') v.countdownTo = nextChange;
      } else {
        v.why = s.idle_off ? t.idleOff : t.available;
      }
  }
  return v;
}

/** What a refusal message is about: once this changes, the message is stale. */
function situation(s) {
  return `${s.reason}|${s.wifi}|${s.override ? s.override.reason : ''}`;
}

function render(card) {
  const s = card.status;
  const v = describe(s);
  card.view = v;
  if (!card.message.hidden && !card.busy && card.messageFor !== situation(s)) card.message.hidden = true;
  const on = s.wifi === 'on';
  card.root.className = `card card-${v.tone}${card.busy ? ' is-busy' : ''}`;
  setText(card.name, s.name);
  setText(card.school, s.school_name || s.school);

  const stateIcon = on ? 'on' : 'off';
  if (card.iconName !== stateIcon + v.whyIcon) {
    card.iconName = stateIcon + v.whyIcon;
    setChildren(card.stateIcon, icon(stateIcon));
    setChildren(card.whyIcon, icon(v.whyIcon));
  }
  setText(card.stateText, on ? t.wifiOn : t.wifiOff);
  setText(card.whyText, v.why);

  // Overrides IT planned ahead: announced, not yet in force.
  const when = (x) => formatWhen(x, s.timezone, t);
  const planned = (s.planned_overrides || [])
    .map((p) => t.plannedOverride(p.wifi, when(p.from), p.until ? when(p.until) : null, p.reason));
  if (card.plannedKey !== planned.join('\n')) {
    card.plannedKey = planned.join('\n');
    setChildren(card.planned, planned.map((text) => h('li', { class: 'planned' }, icon('clock'), ' ', text)));
    card.planned.hidden = planned.length === 0;
  }

  // Duration choices, rebuilt only if the limits change.
  const limits = `${s.session_minutes.default}/${s.session_minutes.max}`;
  if (card.limits !== limits) {
    const previous = Number(card.select.value) || s.session_minutes.default;
    const options = durationOptions(s.session_minutes);
    const chosen = options.includes(previous) ? previous : options.includes(s.session_minutes.default)
      ? s.session_minutes.default : options[0];
    setChildren(card.select, options.map((m) => h('option', { value: m, selected: m === chosen }, t.minutesOption(m))));
    card.select.value = String(chosen);
    card.limits = limits;
  }

  const label = card.busy ? t.working : v.action === 'on' ? t.turnOn : t.turnOff;
  const key = `${label}|${v.action}`;
  if (card.toggle.dataset.key !== key) {
    card.toggle.dataset.key = key;
    setChildren(card.toggle, icon(v.action === 'on' ? 'on' : 'off'), h('span', {}, label));
  }
  card.toggle.className = `toggle toggle-${v.action}`;
  // Busy is aria-disabled, not disabled: a disabled button would drop the
  // keyboard focus of the teacher who just pressed it.
  card.toggle.disabled = !v.canToggle;
  card.toggle.setAttribute('aria-disabled', card.busy ? 'true' : 'false');
  card.toggle.setAttribute('aria-busy', card.busy ? 'true' : 'false');
  card.durationBox.hidden = !(v.canToggle && v.action === 'on');
  card.extend.hidden = !v.extendable;

  const aps = apSummary(s);
  let applyText = '';
  let applyTone = '';
  if (aps.unreachable.length > 0) {
    applyText = aps.total > 1 ? t.someUnreachable(aps.unreachable.length, aps.total) : t.unreachable;
    applyTone = 'warn';
  } else if (aps.applying.length > 0) {
    applyText = t.applying;
    applyTone = 'pending';
  }
  card.apply.hidden = !applyText;
  card.apply.className = `apply apply-${applyTone}`;
  if (card.apply.dataset.text !== applyText) {
    card.apply.dataset.text = applyText;
    setChildren(card.apply, applyText ? icon(applyTone === 'warn' ? 'warn' : 'sync') : null, h('span', {}, applyText));
  }
  tick(card);
}

/** The parts that change every second. */
function tick(card) {
  const s = card.status;
  const v = card.view;
  if (!v) return;
  const tz = s.timezone;
  const nowMs = now();
  if (v.countdownTo !== null && !Number.isNaN(v.countdownTo)) {
    const left = v.countdownTo - nowMs;
    card.countdown.hidden = false;
    setText(card.countdown, left <= 0 ? t.endingNow
      : t.autoOff(formatWhen(v.countdownTo, tz, t), formatLeft(left, t), v.capped));
  } else {
    card.countdown.hidden = true;
  }
  if (!card.durationBox.hidden) {
    const end = nowMs + Number(card.select.value) * 60000;
    const nextChange = s.next_change ? Date.parse(s.next_change.at) : null;
    setText(card.hint, nextChange !== null && nextChange < end
      ? t.untilSlotEnd(formatWhen(nextChange, tz, t)) : t.untilTime(formatWhen(end, tz, t)));
  }
  // A boundary (session end, schedule change) has passed: the event stream
  // normally brings the new state; read it once anyway in case it is late.
  const passed = [s.until, s.next_change && s.next_change.at].map((x) => Date.parse(x || ''))
    .filter((x) => !Number.isNaN(x) && x <= nowMs - 3000);
  if (passed.length && current) {
    const key = Math.max(...passed);
    if (card.refreshedFor !== key) {
      card.refreshedFor = key;
      refresh(card, current);
    }
  }
  if (v.extendable) {
    const until = Date.parse(s.until);
    const nextChange = s.next_change ? Date.parse(s.next_change.at) : null;
    const leftMinutes = Math.ceil((until - nowMs) / 60000);
    card.extend.disabled = leftMinutes >= s.session_minutes.max || (nextChange !== null && until >= nextChange);
    card.extend.setAttribute('aria-disabled', card.busy ? 'true' : 'false');
  }
}

// --- Actions --------------------------------------------------------------------

function toggle(card) {
  const v = card.view;
  if (!v || !v.canToggle || card.busy) return;
  const body = v.action === 'on' ? { wifi: 'on', minutes: Number(card.select.value) } : { wifi: 'off' };
  send(card, body);
}

function extend(card) {
  const s = card.status;
  if (card.busy || s.reason !== 'teacher' || s.wifi !== 'on') return;
  const left = Date.parse(s.until) - now();
  const minutes = Math.max(1, Math.min(Math.ceil(left / 60000) + 15, s.session_minutes.max));
  send(card, { wifi: 'on', minutes });
}

function refusal(e, s) {
  const when = (x) => formatWhen(x, s.timezone, t);
  if (e.status === 409 && e.code === 'locked') return t.refusedLocked(e.body.until ? when(e.body.until) : null);
  if (e.status === 409 && e.code === 'overridden') {
    const o = e.body.override || {};
    return t.refusedOverridden(o.reason || '', e.body.until ? when(e.body.until) : null);
  }
  if (e.code === 'minutes_out_of_range') return t.refusedMinutes(s.session_minutes.max);
  if (e.status === 403) return t.forbidden;
  if (e.status === 429) return t.tooManyAttempts(e.retryAfter);
  if (e.status === 503) return t.unavailable;
  if (e.status === 0) return t.networkError;
  return t.genericError(e.message);
}

async function send(card, body) {
  const session = current;
  card.busy = true;
  card.message.hidden = true;
  render(card);
  try {
    const s = await api(session.token, 'POST', `/api/v1/classrooms/${encodeURIComponent(card.id)}/wifi`, body);
    if (current !== session) return;
    card.status = s;
    // The answer may cross an event about the access points on the way:
    // read the classroom again shortly if it still shows work in progress.
    if (apSummary(s).applying.length > 0) setTimeout(() => refresh(card, session), 2500);
  } catch (e) {
    if (current !== session) return;
    if (e.status === 401) {
      signin.signOut(e.code === 'token_expired' ? t.tokenExpired : t.sessionExpired);
      return;
    }
    setText(card.message, refusal(e, card.status));
    card.message.hidden = false;
    card.messageFor = situation(card.status);
  } finally {
    card.busy = false;
    if (current === session) render(card);
  }
}

async function refresh(card, session) {
  if (current !== session) return;
  try {
    const s = await api(session.token, 'GET', `/api/v1/classrooms/${encodeURIComponent(card.id)}`);
    if (current === session && !card.busy) {
      card.status = s;
      render(card);
    }
  } catch (_) { /* the event stream will bring it */ }
}

// --- Start ----------------------------------------------------------------------

function init() {
  translateStatic(t);
  document.title = t.teacherTitle;
  const other = t.otherLanguage;
  setText(ui.lang, strings[other].languageName);
  ui.lang.lang = other;
  ui.lang.setAttribute('aria-label', strings[other].switchLanguage);
  ui.lang.addEventListener('click', () => { chooseLanguage(other); location.reload(); });
  setInterval(() => {
    if (current) for (const card of current.cards.values()) tick(card);
  }, 1000);
  signin.begin();
}

init();
