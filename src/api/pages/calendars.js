// The dashboard's calendars block: each calendar of the configuration with
// its coverage end, source, last fetch and fetch error, read from /readyz's
// `calendars`. A warning stands out when a calendar used by a schedule
// covers the school holidays less than 60 days ahead (the rule of
// `borne check`) or when its last fetch failed: holidays missing from a
// calendar are school days for borne.

import { api, formatStamp, h, icon, now, setChildren } from './common.js';

// Same threshold as `borne check` (COVERAGE_WARNING_DAYS in src/config/calendars.rs).
const COVERAGE_WARNING_DAYS = 60;
// Calendar URLs are fetched daily: a few minutes of staleness is harmless.
const REFRESH_MS = 5 * 60 * 1000;

/** YYYY-MM-DD of an instant in a time zone. */
function dayIn(ms, tz) {
  const p = {};
  for (const part of new Intl.DateTimeFormat('en-US', {
    timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
  }).formatToParts(ms)) p[part.type] = part.value;
  return `${p.year}-${p.month}-${p.day}`;
}

/** Whole days from `from` to `to` (both YYYY-MM-DD). */
function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400000);
}

/** What is wrong with one calendar: [] when nothing. */
export function calendarProblems(c, today, t) {
  const problems = [];
  if (c.in_schedule) {
    if (!c.coverage_end) problems.push(t.calendarNoHolidays);
    else if (daysBetween(today, c.coverage_end) < COVERAGE_WARNING_DAYS) {
      problems.push(t.calendarCoverageShort(c.coverage_end, COVERAGE_WARNING_DAYS));
    }
  }
  if (c.error) problems.push(t.calendarFetchFailed(c.error));
  return problems;
}

export class CalendarsBlock {
  constructor(el, t) {
    this.el = el;
    this.t = t;
    this.timer = null;
    this.session = null;
  }

  /** Shows the calendars for a signed-in session, refreshed every few minutes. */
  open(session) {
    this.close();
    this.session = session;
    this.load();
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  close() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.session = null;
    this.el.hidden = true;
  }

  async load() {
    const session = this.session;
    if (!session) return;
    let ready;
    try {
      ready = await api(session.token, 'GET', '/readyz');
    } catch (_) {
      // Not ready (store unavailable) or offline: keep what is shown; the
      // classroom list already says when the server is unreachable.
      return;
    }
    if (this.session !== session) return;
    this.render(ready.calendars || {}, session.tz);
  }

  render(calendars, tz) {
    const t = this.t;
    const names = Object.keys(calendars).sort();
    if (names.length === 0) {
      this.el.hidden = true;
      return;
    }
    const today = dayIn(now(), tz);
    let warnings = 0;
    const rows = names.map((name) => {
      const c = calendars[name];
      const problems = calendarProblems(c, today, t);
      if (problems.length) warnings += 1;
      return h('tr', { class: problems.length ? 'row-unreachable' : null, dataset: { calendar: name } },
        h('th', { scope: 'row', class: 'mono' }, name),
        h('td', {}, c.coverage_end || '—',
          c.in_schedule ? null : [' ', h('span', { class: 'sub' }, `(${t.calendarNotInSchedule})`)]),
        h('td', { class: 'mono calendar-source' }, c.source),
        h('td', { class: 'nowrap' }, c.fetched_at ? formatStamp(c.fetched_at, tz, t) : '—'),
        h('td', {}, problems.length
          ? problems.map((p) => h('span', { class: 'pill pill-warn calendar-problem' }, icon('warn'), p))
          : h('span', {}, icon('check'), ' ', t.calendarOk)));
    });
    const cols = [t.calendarColName, t.calendarColCoverage, t.calendarColSource, t.calendarColFetched, t.calendarColState];
    const summary = warnings
      ? h('summary', { class: 'calendars-summary' }, icon('warn'), ' ', t.calendarsWarning(warnings))
      : h('summary', { class: 'calendars-summary' }, t.calendarsOk(names.length));
    const key = JSON.stringify([warnings, names.length]);
    // Opened when something is wrong, so that the warning is seen; a
    // person's own open/closed choice is kept while the state is the same.
    if (this.el.dataset.key !== key) {
      this.el.dataset.key = key;
      this.el.open = warnings > 0;
    }
    this.el.classList.toggle('notice-warn', warnings > 0);
    setChildren(this.el, summary,
      h('div', { class: 'table-wrap' }, h('table', { id: 'calendars-table' },
        h('caption', { class: 'visually-hidden' }, t.calendarsTitle),
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows))));
    this.el.hidden = false;
  }
}
