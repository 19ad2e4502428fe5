// The IT dashboard: every classroom grouped by school, filterable, live;
// overrides of one classroom, a school or the whole city; the access points
// (unreachable first), the audit log and the usage report. A viewer token sees everything
// read-only; a teacher token is sent to the teacher page.

import { strings } from './i18n.js';
import {
  api, apSummary, chooseLanguage, followEvents, formatLeft, formatStamp, formatWhen, h, icon,
  instantToLocalInput, now, pickLanguage, setChildren, setText, showLive, showNotice, signInFlow, translateStatic,
  zonedToInstant,
} from './common.js';
import { ReportTab } from './report.js';
import { CalendarsBlock } from './calendars.js';

const lang = pickLanguage('en');
const t = strings[lang];
const $ = (id) => document.getElementById(id);

const ui = {
  signin: $('signin'), signinForm: $('signin-form'), tokenInput: $('token-input'), signinMessage: $('signin-message'),
  sso: $('sso'),
  notForYou: $('not-for-you'), app: $('app'), readonly: $('readonly'), counts: $('counts'), cluster: $('cluster'), appMessage: $('app-message'),
  clock: $('clock'),
  live: $('live'), who: $('who'), lang: $('lang'), signout: $('signout'),
  tabs: { classrooms: $('tab-classrooms'), aps: $('tab-aps'), audit: $('tab-audit'), report: $('tab-report') },
  panels: { classrooms: $('panel-classrooms'), aps: $('panel-aps'), audit: $('panel-audit'), report: $('panel-report') },
  filter: $('filter'), stateFilter: $('state-filter'), cityActions: $('city-actions'), shown: $('shown'),
  schools: $('schools'), overrideCity: $('override-city'), clearCity: $('clear-city'),
  aps: $('aps'), apsRefresh: $('aps-refresh'),
  auditForm: $('audit-form'), auditClassroom: $('audit-classroom'), auditUser: $('audit-user'), audit: $('audit'),
  auditOlder: $('audit-older'), auditStatus: $('audit-status'),
  reportForm: $('report-form'), reportFrom: $('report-from'), reportTo: $('report-to'), reportGroup: $('report-group'),
  reportPeriod: $('report-period'), reportCsv: $('report-csv'), reportStatus: $('report-status'), reportChart: $('report-chart'),
  report: $('report'), calendars: $('calendars'),
  overrideDialog: $('override-dialog'), overrideForm: $('override-form'), overrideScope: $('override-scope'),
  overrideReason: $('override-reason'), overrideUntil: $('override-until'), overrideUntilHelp: $('override-until-help'),
  overrideFrom: $('override-from'), overrideFromHelp: $('override-from-help'),
  overrideError: $('override-error'), overrideCancel: $('override-cancel'), overrideApply: $('override-apply'),
  clearDialog: $('clear-dialog'), clearForm: $('clear-form'), clearText: $('clear-text'), clearError: $('clear-error'),
  clearCancel: $('clear-cancel'), clearApply: $('clear-apply'),
};

const reportTab = new ReportTab(ui, t, () => signOut(t.sessionExpired));
const calendarsBlock = new CalendarsBlock(ui.calendars, t);

let current = null;

// --- Sign-in ------------------------------------------------------------------------

function resetViews() {
  if (current && current.stream) current.stream.stop();
  current = null;
  ui.app.hidden = true;
  ui.notForYou.hidden = true;
  ui.cluster.hidden = true;
  ui.schools.replaceChildren();
  ui.counts.replaceChildren();
  ui.clock.hidden = true;
  ui.aps.replaceChildren();
  ui.audit.replaceChildren();
  ui.report.replaceChildren();
  ui.reportChart.replaceChildren();
  calendarsBlock.close();
  if (ui.overrideDialog.open) ui.overrideDialog.close();
  if (ui.clearDialog.open) ui.clearDialog.close();
}

const signin = signInFlow({
  ui, t, storeKey: 'borne.admin.token', home: '/admin', start, reset: resetViews, errorText,
});

function signOut(message, tone) {
  signin.signOut(message, tone);
}

function errorText(e) {
  if (e.status === 401) return e.code === 'token_expired' ? t.tokenExpired : t.sessionExpired;
  if (e.status === 429) return t.tooManyAttempts(e.retryAfter);
  if (e.status === 0) return t.networkError;
  if (e.status === 403) return `${t.forbidden} (${e.message})`;
  return t.apiError(e.status, e.message);
}

async function start(token, typed) {
  let me;
  try {
    me = await api(token, 'GET', '/api/v1/me');
  } catch (e) {
    signin.startFailed(e, token, typed);
    return;
  }
  resetViews();
  signin.signedIn(token);
  const roleName = { admin: t.roleAdmin, viewer: t.roleViewer, teacher: t.roleTeacher }[me.role] || me.role;
  setChildren(ui.who, me.name, h('span', { class: 'role' }, roleName));
  if (me.role === 'teacher') {
    ui.notForYou.hidden = false;
    return;
  }
  let list;
  try {
    list = await api(token, 'GET', '/api/v1/classrooms');
  } catch (e) {
    if (e.status === 401) { signOut(t.sessionExpired); return; }
    signin.show(errorText(e));
    return;
  }
  const isAdmin = me.role === 'admin';
  current = {
    token, me, isAdmin,
    statuses: new Map(), rows: new Map(), schools: new Map(),
    stream: null, tab: 'classrooms', audit: { cursor: null }, apTimer: null, countEls: null, tz: undefined,
  };
  ui.app.hidden = false;
  ui.readonly.hidden = isAdmin;
  ui.cityActions.hidden = !isAdmin;
  hideAppMessage();
  buildCounts();
  selectTab('classrooms', false);
  for (const s of list.classrooms || []) update(s, false);
  current.tz = (list.classrooms && list.classrooms[0] && list.classrooms[0].timezone) || undefined;
  refreshAll();
  fillAuditClassrooms();
  loadClock();
  calendarsBlock.open(current);
  loadCluster();
  const session = current;
  current.stream = followEvents(token, {
    onStatus: (s) => { if (current === session) update(s, true); },
    onState: (state) => { if (current === session) showLive(ui.live, state, t); },
    onUnauthorized: () => { if (current === session) signin.ended(session.token); },
  });
}

// Several instances on one database: which one drives the access points,
// and whether one runs another configuration. Alone, nothing is shown.
async function loadCluster() {
  const session = current;
  if (!session) return;
  let c;
  try {
    c = await api(session.token, 'GET', '/api/v1/cluster');
  } catch (e) {
    c = null;
  }
  if (current !== session) return;
  if (c && c.shared) {
    const up = (c.instances || []).filter((i) => i.up);
    const leader = up.find((i) => i.role === 'leader');
    const shas = new Set(up.map((i) => i.config_sha256));
    const parts = [leader ? t.clusterLeader(leader.id, up.length) : t.clusterNoLeader(up.length)];
    if (shas.size > 1 || c.config_differs) parts.push(' ', h('strong', {}, t.clusterConfigDiffers));
    ui.cluster.className = `notice cluster ${leader && shas.size <= 1 ? 'notice-info' : 'notice-warn'}`;
    setChildren(ui.cluster, ...parts);
    ui.cluster.hidden = false;
  } else {
    ui.cluster.hidden = true;
  }
  clearTimeout(session.clusterTimer);
  session.clusterTimer = setTimeout(loadCluster, 5000);
}

function showAppMessage(content, tone) {
  showNotice(ui.appMessage, content, tone);
}

function hideAppMessage() {
  ui.appMessage.hidden = true;
}

// --- Counts ------------------------------------------------------------------------

function buildCounts() {
  const make = (key, iconName, label) => {
    const value = h('span', { class: 'count-value' }, '0');
    const unit = h('span', { class: 'count-unit' });
    const li = h('li', { class: `count count-${key}`, dataset: { count: key } },
      h('span', { class: 'count-label' }, icon(iconName), label), value, unit);
    return { li, value, unit };
  };
  current.countEls = {
    on: make('on', 'on', t.countOn),
    off: make('off', 'off', t.countOff),
    unreachable: make('unreachable', 'warn', t.countUnreachable),
    override: make('override', 'shield', t.countOverrides),
    applying: make('applying', 'sync', t.countApplying),
  };
  ui.counts.replaceChildren(...Object.values(current.countEls).map((c) => c.li));
}

function updateCounts() {
  let on = 0; let off = 0; let unreachable = 0; let overrides = 0; let applying = 0;
  for (const s of current.statuses.values()) {
    if (s.wifi === 'on') on += 1; else off += 1;
    if (s.reason === 'override') overrides += 1;
    const aps = apSummary(s);
    unreachable += aps.unreachable.length;
    if (aps.applying.length) applying += 1;
  }
  const set = (key, n, unit) => {
    const c = current.countEls[key];
    setText(c.value, String(n));
    setText(c.unit, unit(n));
    c.li.classList.toggle('is-zero', n === 0);
  };
  set('on', on, t.classroomsUnit);
  set('off', off, t.classroomsUnit);
  set('unreachable', unreachable, t.apsUnit);
  set('override', overrides, t.classroomsUnit);
  set('applying', applying, t.classroomsUnit);
  const badge = unreachable > 0 ? h('span', { class: 'badge', 'aria-label': `${unreachable} ${t.apUnreachable}` }, String(unreachable)) : null;
  const key = String(unreachable);
  if (ui.tabs.aps.dataset.key !== key) {
    ui.tabs.aps.dataset.key = key;
    setChildren(ui.tabs.aps, t.tabAccessPoints, badge);
  }
}

// --- Server clock ------------------------------------------------------------------

/** The server clock's state from /readyz: synchronised, require_sync, last step. */
async function loadClock() {
  const session = current;
  let ready;
  try {
    ready = await api(session.token, 'GET', '/readyz');
  } catch (_) {
    return; // The page says elsewhere when the server cannot be reached.
  }
  if (current !== session || !ready || !ready.clock) return;
  renderClock(ready.clock);
}

function renderClock(c) {
  const el = ui.clock;
  el.className = `notice clock-status ${c.synchronized ? 'notice-ok' : 'notice-warn'}`;
  el.dataset.synchronized = String(c.synchronized);
  el.dataset.requireSync = String(c.require_sync);
  const parts = [icon(c.synchronized ? 'clock' : 'warn'), ' ',
    h('strong', { class: 'clock-sync' }, c.synchronized ? t.clockSynced : t.clockUnsynced)];
  if (!c.synchronized && c.plausible === false) parts.push(' ', t.clockBeforeBuild);
  parts.push(' · ', h('span', { class: 'clock-require' },
    c.require_sync ? t.clockRequireSync(c.synchronized) : t.clockNoRequireSync(c.synchronized)));
  const step = c.last_step;
  const stepText = step
    ? t.clockLastStep(`${step.seconds > 0 ? '+' : ''}${Math.round(step.seconds)}`, formatStamp(step.at, current.tz, t))
    : t.clockNoStep;
  parts.push(' · ', h('span', { class: 'clock-step' }, stepText));
  setChildren(el, parts);
  el.hidden = false;
}

// --- Classrooms --------------------------------------------------------------------

function schoolSection(s) {
  let school = current.schools.get(s.school);
  if (school) return school;
  const base = `school-${s.school}`;
  school = { id: s.school, name: s.school_name || s.school, count: 0 };
  school.title = h('span', {}, school.name);
  school.meta = h('span', { class: 'school-meta' });
  const actions = h('div', { class: 'actions' });
  if (current.isAdmin) {
    actions.append(
      h('button', { type: 'button', class: 'secondary small', dataset: { action: 'override-school' },
        onclick: () => openOverride({ kind: 'school', id: school.id, name: school.name }) }, t.overrideSchool),
      h('button', { type: 'button', class: 'danger small', dataset: { action: 'clear-school' },
        onclick: () => openClear({ kind: 'school', id: school.id, name: school.name }) }, t.clearSchool));
  }
  const headers = [t.colClassroom, t.colWifi, t.colReason, t.colUntil, t.colAccessPoints];
  if (current.isAdmin) headers.push(t.colActions);
  school.tbody = h('tbody');
  school.root = h('section', { class: 'school', 'aria-labelledby': `${base}-title`, dataset: { school: s.school } },
    h('div', { class: 'school-head' }, h('h2', { id: `${base}-title` }, school.title, school.meta), actions),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'rooms' },
        h('colgroup', {}, ['room', 'wifi', 'reason', 'until', 'aps', 'actions'].slice(0, headers.length)
          .map((c) => h('col', { class: `col-${c}` }))),
        h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
        school.tbody)));
  current.schools.set(s.school, school);
  ui.schools.append(school.root);
  return school;
}

function createRow(s) {
  const school = schoolSection(s);
  const row = { id: s.id, school };
  row.name = h('span', { class: 'room-name' });
  row.wifi = h('td', { class: 'nowrap' });
  row.reason = h('td');
  row.untilWhen = h('span');
  row.untilLeft = h('span', { class: 'sub' });
  row.until = h('td', {}, row.untilWhen, row.untilLeft);
  row.aps = h('td');
  row.tr = h('tr', { dataset: { classroom: s.id } },
    h('th', { scope: 'row' }, row.name, h('span', { class: 'room-id sub' }, s.id)),
    row.wifi, row.reason, row.until, row.aps);
  if (current.isAdmin) {
    row.clear = h('button', { type: 'button', class: 'danger small', dataset: { action: 'clear' },
      onclick: () => openClear({ kind: 'classroom', id: s.id, name: current.statuses.get(s.id).name }) }, t.clearClassroom);
    row.override = h('button', { type: 'button', class: 'secondary small', dataset: { action: 'override' },
      onclick: () => {
        const st = current.statuses.get(s.id);
        openOverride({ kind: 'classroom', id: s.id, name: st.name, school: st.school_name, tz: st.timezone });
      } }, t.overrideClassroom);
    row.tr.append(h('td', {}, h('div', { class: 'actions' }, row.override, row.clear)));
  }
  school.tbody.append(row.tr);
  school.count += 1;
  setText(school.meta, `${school.count} ${t.classroomsUnit(school.count)}`);
  current.rows.set(s.id, row);
  return row;
}

function update(s, live) {
  if (!current) return;
  current.statuses.set(s.id, s);
  const row = current.rows.get(s.id) || createRow(s);
  renderRow(row, s);
  if (live) {
    scheduleRefresh();
  }
}

let refreshQueued = false;
/** Counts and filter after a burst of events, once per frame. */
function scheduleRefresh() {
  if (refreshQueued) return;
  refreshQueued = true;
  requestAnimationFrame(() => {
    refreshQueued = false;
    if (!current) return;
    refreshAll();
    if (current.tab === 'aps') {
      clearTimeout(current.apTimer);
      current.apTimer = setTimeout(loadAps, 1500);
    }
  });
}

function refreshAll() {
  updateCounts();
  applyFilter();
}

function wifiPill(wifi) {
  return h('span', { class: `pill pill-${wifi}` }, icon(wifi === 'on' ? 'on' : 'off'), wifi === 'on' ? t.stateOn : t.stateOff);
}

function renderRow(row, s) {
  setText(row.name, s.name);
  const aps = apSummary(s);
  setChildren(row.wifi, wifiPill(s.wifi), aps.applying.length ? h('span', { class: 'applying-note' }, t.apApplying(s.wifi)) : null);

  let reason;
  if (s.reason === 'override') {
    const o = s.override || { reason: '', by: '' };
    reason = h('span', { class: 'tag-override' }, icon('shield'), ' ', t.reasonOverride(o.reason, o.by));
  } else if (s.reason === 'locked') {
    reason = h('span', {}, icon('lock'), ' ', t.reasonLocked(s.closed_day));
  } else if (s.reason === 'teacher') {
    reason = h('span', {}, t.reasonTeacher(s.session ? s.session.by : '?'));
  } else {
    reason = h('span', {}, s.wifi === 'on' ? t.reasonScheduleOn : t.reasonAvailable);
  }
  setChildren(row.reason, reason, plannedList(s));

  setChildren(row.aps, h('ul', { class: 'ap-list' }, (s.access_points || []).map((a) => apLine(a, s))));
  row.tr.classList.toggle('row-unreachable', aps.unreachable.length > 0);
  if (row.clear) row.clear.hidden = !s.override;
  if (row.override) row.override.setAttribute('aria-label', t.overrideClassroomLabel(s.name));
  if (row.clear) row.clear.setAttribute('aria-label', t.clearClassroomLabel(s.name));
  tickRow(row, s);
}

/** The classroom's planned overrides, each with a cancel button for IT. */
function plannedList(s) {
  const planned = s.planned_overrides || [];
  if (planned.length === 0) return null;
  return h('ul', { class: 'planned-list' }, planned.map((p) => {
    const from = formatWhen(p.from, s.timezone, t);
    const until = p.until ? formatWhen(p.until, s.timezone, t) : null;
    return h('li', { class: 'planned', dataset: { from: p.from } },
      icon('clock'), ' ', t.plannedOverride(p.wifi, from, until, p.reason), ' ',
      h('span', { class: 'sub' }, t.plannedBy(p.by)), ' ',
      current && current.isAdmin ? h('button', {
        type: 'button', class: 'secondary small', dataset: { action: 'cancel-planned' },
        'aria-label': t.cancelPlannedLabel(s.name, from), onclick: () => cancelPlanned(s.id, p.from),
      }, t.cancelPlanned) : null);
  }));
}

async function cancelPlanned(id, from) {
  const session = current;
  if (!session || !session.isAdmin) return;
  try {
    const s = await api(session.token, 'DELETE',
      `/api/v1/classrooms/${encodeURIComponent(id)}/override?from=${encodeURIComponent(from)}`);
    if (current !== session) return;
    update(s, true);
    showAppMessage([icon('check'), ' ', t.donePlannedCancel], 'ok');
    afterAction();
  } catch (err) {
    if (err.status === 401) { signOut(t.sessionExpired); return; }
    showAppMessage(errorText(err), 'warn');
  }
}

function apLine(a, s) {
  const observed = a.observed || 'unknown';
  const parts = [
    h('span', { class: 'mono' }, a.id),
    h('span', { class: `pill pill-${observed === 'unknown' ? 'unknown' : observed}` },
      observed === 'unknown' ? null : icon(observed === 'on' ? 'on' : 'off'), t.apObserved[observed] || observed),
  ];
  if (!a.reachable) {
    parts.push(h('span', { class: 'pill pill-warn' }, icon('warn'),
      `${t.apUnreachable} · ${t.apFailures(a.consecutive_failures || 0)}`));
  }
  if (a.clients !== null && a.clients !== undefined && observed === 'on') parts.push(h('span', { class: 'sub' }, t.apClients(a.clients)));
  if (a.assumed) parts.push(h('span', { class: 'sub' }, t.apAssumed));
  if (a.lease_held && a.lease_until) {
    parts.push(h('span', { class: 'sub' }, t.apLease(formatStamp(a.lease_until, s.timezone, t))));
  }
  return h('li', {},
    h('span', { class: 'ap-line' }, parts),
    a.last_error ? h('span', { class: 'ap-error' }, a.last_error) : null);
}

function tickRow(row, s) {
  const until = s.until;
  if (!until) {
    setText(row.untilWhen, s.reason === 'override' ? t.untilNever : t.untilNone);
    setText(row.untilLeft, '');
    return;
  }
  setText(row.untilWhen, formatWhen(until, s.timezone, t));
  setText(row.untilLeft, t.inTime(formatLeft(Date.parse(until) - now(), t)));
}

const refreshedFor = new Set();

/** When a session, override or schedule period has ended, the event stream
 *  normally brings the new states; read them once anyway in case it is late. */
async function checkBoundaries() {
  const nowMs = now();
  let due = false;
  for (const s of current.statuses.values()) {
    for (const x of [s.until, s.next_change && s.next_change.at]) {
      const at = Date.parse(x || '');
      if (Number.isNaN(at) || at > nowMs - 3000) continue;
      const key = `${s.id}@${at}`;
      if (!refreshedFor.has(key)) {
        refreshedFor.add(key);
        due = true;
      }
    }
  }
  if (!due) return;
  const session = current;
  try {
    const list = await api(session.token, 'GET', '/api/v1/classrooms');
    if (current === session) for (const s of list.classrooms || []) update(s, true);
  } catch (_) { /* the event stream will bring it */ }
}

// --- Filter -------------------------------------------------------------------------

const STATE_FILTERS = [
  ['all', 'stateAll'], ['on', 'stateOn'], ['off', 'stateOff'], ['override', 'stateOverride'], ['locked', 'stateLocked'],
  ['teacher', 'stateTeacher'], ['applying', 'stateApplying'], ['unreachable', 'stateUnreachable'],
];

function matchesState(s, f) {
  switch (f) {
    case 'on': return s.wifi === 'on';
    case 'off': return s.wifi === 'off';
    case 'override': return s.reason === 'override';
    case 'locked': return s.reason === 'locked';
    case 'teacher': return s.reason === 'teacher';
    case 'applying': return apSummary(s).applying.length > 0;
    case 'unreachable': return apSummary(s).unreachable.length > 0;
    default: return true;
  }
}

function matchesText(s, q) {
  if (!q) return true;
  const hay = [s.name, s.id, s.school_name, s.school, ...(s.access_points || []).map((a) => a.id),
    s.override ? s.override.reason : '', s.override ? s.override.by : '', s.session ? s.session.by : '']
    .join(' ').toLowerCase();
  return q.split(/\s+/).every((w) => hay.includes(w));
}

function applyFilter() {
  if (!current) return;
  const q = ui.filter.value.trim().toLowerCase();
  const f = ui.stateFilter.value || 'all';
  const visibleBySchool = new Map();
  let shown = 0;
  for (const [id, row] of current.rows) {
    const s = current.statuses.get(id);
    const ok = matchesState(s, f) && matchesText(s, q);
    row.tr.hidden = !ok;
    if (ok) {
      shown += 1;
      visibleBySchool.set(row.school.id, true);
    }
  }
  for (const school of current.schools.values()) school.root.hidden = !visibleBySchool.get(school.id);
  const total = current.rows.size;
  setText(ui.shown, shown === 0 && total > 0 ? t.noMatch : t.shownOf(shown, total));
}

// --- Override and clear dialogs ---------------------------------------------------------

let pending = null;

function scopeCount(scope) {
  if (scope.kind === 'all') return current.statuses.size;
  if (scope.kind === 'school') return [...current.statuses.values()].filter((s) => s.school === scope.id).length;
  return 1;
}

function scopeTz(scope) {
  if (scope.tz) return scope.tz;
  for (const s of current.statuses.values()) {
    if (scope.kind !== 'school' || s.school === scope.id) return s.timezone;
  }
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

function scopeLabel(scope) {
  const n = scopeCount(scope);
  if (scope.kind === 'all') return t.scopeCity(n);
  if (scope.kind === 'school') return t.scopeSchool(scope.name, n);
  return t.scopeClassroom(scope.name, scope.school);
}

function openOverride(scope) {
  if (!current || !current.isAdmin) return;
  pending = { scope, tz: scopeTz(scope), opener: document.activeElement };
  ui.overrideForm.reset();
  setText(ui.overrideScope, scopeLabel(scope));
  setText(ui.overrideUntilHelp, t.untilHelp(pending.tz));
  setText(ui.overrideFromHelp, t.fromHelp(pending.tz));
  ui.overrideUntil.min = instantToLocalInput(now(), pending.tz);
  ui.overrideFrom.min = ui.overrideUntil.min;
  ui.overrideError.hidden = true;
  ui.overrideApply.disabled = false;
  ui.overrideDialog.showModal();
  ui.overrideReason.focus();
}

function openClear(scope) {
  if (!current || !current.isAdmin) return;
  pending = { scope, opener: document.activeElement };
  const text = scope.kind === 'all' ? t.clearConfirmCity
    : scope.kind === 'school' ? t.clearConfirmSchool(scope.name) : t.clearConfirmClassroom(scope.name);
  setText(ui.clearText, text);
  ui.clearError.hidden = true;
  ui.clearApply.disabled = false;
  ui.clearDialog.showModal();
  ui.clearApply.focus();
}

function closeDialog(dialog) {
  if (dialog.open) dialog.close();
  const opener = pending && pending.opener;
  pending = null;
  if (opener && document.contains(opener)) opener.focus();
}

function dialogError(el, message) {
  setText(el, message);
  el.hidden = false;
}

async function submitOverride(e) {
  e.preventDefault();
  if (!pending || !current) return;
  const { scope, tz } = pending;
  const reason = ui.overrideReason.value.trim();
  const wifi = new FormData(ui.overrideForm).get('wifi') === 'on' ? 'on' : 'off';
  if (!reason) {
    dialogError(ui.overrideError, t.reasonRequired);
    ui.overrideReason.focus();
    return;
  }
  let until = null;
  if (ui.overrideUntil.value) {
    const at = zonedToInstant(ui.overrideUntil.value, tz);
    if (!at || at.getTime() <= now()) {
      dialogError(ui.overrideError, t.untilPast);
      ui.overrideUntil.focus();
      return;
    }
    until = at.toISOString();
  }
  let from = null;
  if (ui.overrideFrom.value) {
    const at = zonedToInstant(ui.overrideFrom.value, tz);
    if (!at) {
      dialogError(ui.overrideError, t.untilPast);
      ui.overrideFrom.focus();
      return;
    }
    if (until && at.getTime() >= Date.parse(until)) {
      dialogError(ui.overrideError, t.fromAfterUntil);
      ui.overrideFrom.focus();
      return;
    }
    // A start in the past means now (the server says so too).
    if (at.getTime() > now()) from = at.toISOString();
  }
  const body = { wifi, until, reason };
  if (from) body.from = from;
  ui.overrideApply.disabled = true;
  const session = current;
  try {
    let count = 1;
    if (scope.kind === 'classroom') {
      const s = await api(session.token, 'PUT', `/api/v1/classrooms/${encodeURIComponent(scope.id)}/override`, body);
      if (current === session) update(s, true);
    } else {
      const result = await api(session.token, 'POST', '/api/v1/overrides',
        { scope: scope.kind === 'all' ? { all: true } : { school: scope.id }, ...body });
      count = result.count;
    }
    if (current !== session) return;
    closeDialog(ui.overrideDialog);
    showAppMessage([icon('check'), ' ', t.doneOverride(count, wifi)], 'ok');
    afterAction();
  } catch (err) {
    if (err.status === 401) { signOut(t.sessionExpired); return; }
    dialogError(ui.overrideError, errorText(err));
    ui.overrideApply.disabled = false;
  }
}

async function submitClear(e) {
  e.preventDefault();
  if (!pending || !current) return;
  const { scope } = pending;
  ui.clearApply.disabled = true;
  const session = current;
  try {
    let count;
    if (scope.kind === 'classroom') {
      const had = !!(current.statuses.get(scope.id) || {}).override;
      const s = await api(session.token, 'DELETE', `/api/v1/classrooms/${encodeURIComponent(scope.id)}/override`);
      if (current === session) update(s, true);
      count = had ? 1 : 0;
    } else {
      const q = scope.kind === 'school' ? `?school=${encodeURIComponent(scope.id)}` : '';
      count = (await api(session.token, 'DELETE', `/api/v1/overrides${q}`)).count;
    }
    if (current !== session) return;
    closeDialog(ui.clearDialog);
    showAppMessage([icon('check'), ' ', t.doneClear(count)], 'ok');
    afterAction();
  } catch (err) {
    if (err.status === 401) { signOut(t.sessionExpired); return; }
    dialogError(ui.clearError, errorText(err));
    ui.clearApply.disabled = false;
  }
}

function afterAction() {
  if (current.tab === 'audit') loadAudit(true);
  if (current.tab === 'aps') loadAps();
}

// --- Tabs ----------------------------------------------------------------------------

function selectTab(name, focus) {
  if (!current) return;
  current.tab = name;
  for (const [key, tab] of Object.entries(ui.tabs)) {
    const on = key === name;
    tab.setAttribute('aria-selected', on ? 'true' : 'false');
    tab.tabIndex = on ? 0 : -1;
    ui.panels[key].hidden = !on;
  }
  if (focus) ui.tabs[name].focus();
  if (name === 'aps') loadAps();
  if (name === 'audit') loadAudit(true);
  if (name === 'report') reportTab.open(current);
}

function onTabKey(e) {
  const order = Object.keys(ui.tabs).filter((k) => !ui.tabs[k].hidden);
  const i = order.indexOf(current ? current.tab : 'classrooms');
  let next = null;
  if (e.key === 'ArrowRight') next = order[(i + 1) % order.length];
  else if (e.key === 'ArrowLeft') next = order[(i - 1 + order.length) % order.length];
  else if (e.key === 'Home') next = order[0];
  else if (e.key === 'End') next = order[order.length - 1];
  if (next) {
    e.preventDefault();
    selectTab(next, true);
  }
}

// --- Access points ----------------------------------------------------------------------

async function loadAps() {
  if (!current) return;
  const session = current;
  let data;
  try {
    data = await api(session.token, 'GET', '/api/v1/access-points');
  } catch (e) {
    if (e.status === 401) { signOut(t.sessionExpired); return; }
    if (current === session) setChildren(ui.aps, h('p', { class: 'notice notice-warn' }, errorText(e)));
    return;
  }
  if (current !== session) return;
  const cols = [t.apColId, t.apColClassroom, t.apColSchool, t.apColDriver, t.apColDesired, t.apColObserved,
    t.apColReachable, t.apColError, t.apColFailures, t.apColContact, t.apColClients];
  const names = new Map([...current.statuses.values()].map((s) => [s.id, s]));
  const rows = (data.access_points || []).map((a) => {
    const room = names.get(a.classroom);
    const tz = room ? room.timezone : current.tz;
    const observed = a.observed || 'unknown';
    return h('tr', { class: a.reachable ? null : 'row-unreachable', dataset: { ap: a.id } },
      h('th', { scope: 'row', class: 'mono' }, a.id),
      h('td', {}, room ? room.name : a.classroom, h('span', { class: 'room-id sub' }, a.classroom)),
      h('td', {}, room ? room.school_name : a.school),
      h('td', {}, a.driver),
      h('td', {}, wifiPill(a.desired)),
      h('td', {}, h('span', { class: `pill pill-${observed === 'unknown' ? 'unknown' : observed}` },
        observed === 'unknown' ? null : icon(observed === 'on' ? 'on' : 'off'), t.apObserved[observed] || observed)),
      h('td', {}, a.reachable ? h('span', {}, icon('check'), ' ', t.yes)
        : h('span', { class: 'pill pill-warn' }, icon('warn'), t.no)),
      h('td', {}, a.last_error ? h('span', { class: 'ap-error' }, a.last_error) : '—'),
      h('td', {}, String(a.consecutive_failures || 0)),
      h('td', { class: 'nowrap' }, a.last_contact ? formatStamp(a.last_contact, tz, t) : '—'),
      h('td', {}, a.clients === null || a.clients === undefined ? '—' : String(a.clients)));
  });
  setChildren(ui.aps, h('table', {},
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows)));
}

// --- Audit log ----------------------------------------------------------------------------

function fillAuditClassrooms() {
  const keep = ui.auditClassroom.value;
  const options = [h('option', { value: '' }, t.auditAnyClassroom)];
  for (const s of current.statuses.values()) options.push(h('option', { value: s.id }, `${s.name} — ${s.school_name} (${s.id})`));
  setChildren(ui.auditClassroom, options);
  ui.auditClassroom.value = keep;
}

let auditBody = null;
let auditLoading = false;

async function loadAudit(reset) {
  if (!current || auditLoading) return;
  const session = current;
  const params = new URLSearchParams({ limit: '50' });
  if (ui.auditClassroom.value) params.set('classroom', ui.auditClassroom.value);
  if (ui.auditUser.value.trim()) params.set('user', ui.auditUser.value.trim());
  if (!reset && current.audit.cursor !== null) params.set('cursor', String(current.audit.cursor));
  auditLoading = true;
  setText(ui.auditStatus, t.loading);
  let page;
  try {
    page = await api(session.token, 'GET', `/api/v1/audit?${params}`);
  } catch (e) {
    auditLoading = false;
    if (e.status === 401) { signOut(t.sessionExpired); return; }
    if (current === session) setText(ui.auditStatus, errorText(e));
    return;
  } finally {
    auditLoading = false;
  }
  if (current !== session) return;
  if (reset || !auditBody) {
    auditBody = h('tbody');
    const cols = [t.auditColAt, t.auditColActor, t.auditColClassroom, t.auditColAction, t.auditColDetail,
      t.auditColResult, t.auditColSource];
    setChildren(ui.audit, h('table', {}, h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))), auditBody));
  }
  for (const e of page.entries || []) {
    const refused = String(e.result || '').startsWith('refused') || String(e.result || '').startsWith('error');
    auditBody.append(h('tr', { dataset: { id: e.id } },
      h('td', { class: 'nowrap' }, formatStamp(e.at, current.tz, t)),
      h('td', {}, e.actor, e.role ? h('span', { class: 'sub' }, e.role) : null),
      h('td', {}, e.classroom || '—', e.access_point ? h('span', { class: 'sub mono' }, e.access_point) : null),
      h('td', { class: 'mono' }, e.action),
      h('td', {}, e.detail),
      h('td', {}, refused ? h('span', { class: 'pill pill-warn' }, e.result) : e.result),
      h('td', { class: 'mono' }, e.source || '—')));
  }
  current.audit.cursor = page.next_cursor;
  ui.auditOlder.hidden = page.next_cursor === null || page.next_cursor === undefined;
  const empty = auditBody.children.length === 0;
  setText(ui.auditStatus, empty ? t.auditEmpty : ui.auditOlder.hidden ? t.auditEnd : '');
}

// --- Start ---------------------------------------------------------------------------------

function init() {
  translateStatic(t);
  document.title = t.adminTitle;
  setText(ui.tabs.aps, t.tabAccessPoints);
  const other = t.otherLanguage;
  setText(ui.lang, strings[other].languageName);
  ui.lang.lang = other;
  ui.lang.setAttribute('aria-label', strings[other].switchLanguage);
  ui.lang.addEventListener('click', () => { chooseLanguage(other); location.reload(); });
  setChildren(ui.stateFilter, STATE_FILTERS.map(([v, k]) => h('option', { value: v }, t[k])));
  ui.filter.addEventListener('input', applyFilter);
  ui.stateFilter.addEventListener('change', applyFilter);
  for (const [name, tab] of Object.entries(ui.tabs)) {
    tab.addEventListener('click', () => selectTab(name, false));
    tab.addEventListener('keydown', onTabKey);
  }
  ui.overrideCity.addEventListener('click', () => openOverride({ kind: 'all' }));
  ui.clearCity.addEventListener('click', () => openClear({ kind: 'all' }));
  ui.overrideForm.addEventListener('submit', submitOverride);
  ui.clearForm.addEventListener('submit', submitClear);
  ui.overrideCancel.addEventListener('click', () => closeDialog(ui.overrideDialog));
  ui.clearCancel.addEventListener('click', () => closeDialog(ui.clearDialog));
  ui.apsRefresh.addEventListener('click', loadAps);
  ui.auditForm.addEventListener('submit', (e) => { e.preventDefault(); loadAudit(true); });
  ui.auditOlder.addEventListener('click', () => loadAudit(false));
  setInterval(() => {
    if (!current) return;
    if (current.tab === 'classrooms') {
      for (const [id, row] of current.rows) if (!row.tr.hidden) tickRow(row, current.statuses.get(id));
    }
    checkBoundaries();
  }, 1000);
  // The daemon notices a change of the clock within 30 s: look as often.
  setInterval(() => { if (current) loadClock(); }, 30000);
  signin.begin();
}

init();
