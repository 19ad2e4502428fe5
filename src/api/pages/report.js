// The "Rapport / Report" tab of the IT dashboard: the usage report for the
// steering committee. A period picker, a chart of on-hours per week per
// school drawn here as inline SVG (no external resource, nothing the
// Content-Security-Policy would refuse), the table of rows with its totals,
// and a CSV download of the same rows.

import { api, h, setChildren, setText } from './common.js';

const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function iso(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** Hours with one decimal, in the page's language. */
function hours(seconds, t) {
  return (seconds / 3600).toLocaleString(t.locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
}

export class ReportTab {
  constructor(ui, t, onUnauthorized) {
    this.ui = ui;
    this.t = t;
    this.onUnauthorized = onUnauthorized;
    this.session = null;
    this.loading = false;
    const to = new Date();
    const from = new Date(to.getFullYear(), to.getMonth(), to.getDate() - 27);
    ui.reportFrom.value = iso(from);
    ui.reportTo.value = iso(to);
    setChildren(ui.reportGroup, [
      h('option', { value: 'school' }, t.reportGroupSchool),
      h('option', { value: 'classroom' }, t.reportGroupClassroom),
      h('option', { value: 'city' }, t.reportGroupCity),
    ]);
    setChildren(ui.reportPeriod, [
      h('option', { value: 'week' }, t.reportPeriodWeek),
      h('option', { value: 'day' }, t.reportPeriodDay),
      h('option', { value: 'month' }, t.reportPeriodMonth),
    ]);
    ui.reportForm.addEventListener('submit', (e) => { e.preventDefault(); this.load(); });
    ui.reportCsv.addEventListener('click', () => this.download());
  }

  open(session) {
    this.session = session;
    this.load();
  }

  query(extra) {
    const p = new URLSearchParams({
      from: this.ui.reportFrom.value,
      to: this.ui.reportTo.value,
      group: this.ui.reportGroup.value,
      period: this.ui.reportPeriod.value,
      ...extra,
    });
    return `/api/v1/report?${p}`;
  }

  async load() {
    const { ui, t } = this;
    const session = this.session;
    if (!session || this.loading) return;
    this.loading = true;
    setText(ui.reportStatus, t.loading);
    let table;
    let chart;
    try {
      [table, chart] = await Promise.all([
        api(session.token, 'GET', this.query({})),
        api(session.token, 'GET', this.query({ group: 'school', period: 'week' })),
      ]);
    } catch (e) {
      if (e.status === 401) { this.onUnauthorized(); return; }
      setText(ui.reportStatus, t.apiError(e.status, e.message));
      return;
    } finally {
      this.loading = false;
    }
    if (this.session !== session) return;
    this.drawChart(chart.rows || []);
    this.drawTable(table);
    setText(ui.reportStatus, (table.rows || []).length === 0 ? t.reportEmpty : '');
  }

  drawChart(rows) {
    const { ui, t } = this;
    const weeks = [...new Set(rows.map((r) => r.period_start))].sort();
    const schools = [...new Set(rows.map((r) => r.school))];
    const value = new Map(rows.map((r) => [`${r.school}|${r.period_start}`, r.on_seconds / 3600]));
    const max = Math.max(1, ...value.values());
    const W = 720;
    const H = 240;
    const left = 48;
    const bottom = 28;
    const top = 12;
    const plotW = W - left - 8;
    const plotH = H - bottom - top;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'report-chart', role: 'img', 'aria-labelledby': 'report-chart-title' });
    svg.append(s('title', { id: 'report-chart-title' }, t.reportChartTitle));
    // Four grid lines with their hour labels.
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      svg.append(s('line', { x1: left, x2: W - 8, y1: y, y2: y, class: 'grid' }));
      svg.append(s('text', { x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, (max * i / 4).toFixed(max < 8 ? 1 : 0)));
    }
    const slot = plotW / Math.max(1, weeks.length);
    const barW = Math.max(2, (slot * 0.8) / Math.max(1, schools.length));
    weeks.forEach((w, wi) => {
      schools.forEach((sc, si) => {
        const v = value.get(`${sc}|${w}`) || 0;
        const bh = (plotH * v) / max;
        const x = left + wi * slot + slot * 0.1 + si * barW;
        const bar = s('rect', {
          x: x.toFixed(1), y: (top + plotH - bh).toFixed(1), width: (barW - 1).toFixed(1), height: bh.toFixed(1),
          class: `bar bar-${si % 8}`, 'data-school': sc, 'data-week': w, 'data-hours': v.toFixed(2),
        });
        bar.append(s('title', {}, t.reportBarTitle(sc, w, hours(v * 3600, t))));
        svg.append(bar);
      });
      svg.append(s('text', { x: (left + wi * slot + slot / 2).toFixed(1), y: H - 8, class: 'axis', 'text-anchor': 'middle' }, w.slice(5)));
    });
    const legend = h('ul', { class: 'legend' }, schools.map((sc, si) => h('li', {}, h('span', { class: `swatch bar-${si % 8}` }), sc)));
    setChildren(ui.reportChart, svg, legend);
  }

  drawTable(report) {
    const { ui, t } = this;
    const group = report.group;
    const cols = [t.reportColPeriod];
    if (group !== 'city') cols.push(t.reportColSchool);
    if (group === 'classroom') cols.push(t.reportColClassroom);
    cols.push(t.reportColOn, t.reportColTeacher, t.reportColSchedule, t.reportColOverride, t.reportColOutside,
      t.reportColUnknown, t.reportColSessions, t.reportColOverrides, t.reportColRefused);
    const num = (v, field) => h('td', { class: 'num', dataset: { field, value: String(v) } }, String(v));
    const hrs = (v, field) => h('td', { class: 'num', dataset: { field, value: String(v) } }, hours(v, t));
    const total = { on: 0, teacher: 0, schedule: 0, override: 0, outside: 0, unknown: 0, sessions: 0, overrides: 0, refused: 0 };
    const body = h('tbody');
    for (const r of report.rows || []) {
      const refused = Object.values(r.refused || {}).reduce((a, b) => a + b, 0);
      const c = r.on_seconds_by_cause;
      total.on += r.on_seconds; total.teacher += c.teacher; total.schedule += c.schedule; total.override += c.override;
      total.outside += r.on_outside_school_hours_seconds; total.unknown += r.unknown_seconds;
      total.sessions += r.sessions.count; total.overrides += r.overrides.count; total.refused += refused;
      const cells = [h('td', { class: 'nowrap' }, r.period_start)];
      if (group !== 'city') cells.push(h('td', {}, r.school));
      if (group === 'classroom') cells.push(h('td', {}, r.classroom));
      cells.push(hrs(r.on_seconds, 'on'), hrs(c.teacher, 'teacher'), hrs(c.schedule, 'schedule'), hrs(c.override, 'override'),
        hrs(r.on_outside_school_hours_seconds, 'outside'), hrs(r.unknown_seconds, 'unknown'),
        num(r.sessions.count, 'sessions'), num(r.overrides.count, 'overrides'), num(refused, 'refused'));
      body.append(h('tr', {}, cells));
    }
    const span = 1 + (group !== 'city' ? 1 : 0) + (group === 'classroom' ? 1 : 0);
    const foot = h('tfoot', {}, h('tr', { class: 'total' },
      h('th', { scope: 'row', colspan: String(span) }, t.reportTotal),
      hrs(total.on, 'on'), hrs(total.teacher, 'teacher'), hrs(total.schedule, 'schedule'), hrs(total.override, 'override'),
      hrs(total.outside, 'outside'), hrs(total.unknown, 'unknown'),
      num(total.sessions, 'sessions'), num(total.overrides, 'overrides'), num(total.refused, 'refused')));
    setChildren(ui.report, h('table', {},
      h('caption', { class: 'visually-hidden' }, t.reportTableCaption),
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))), body, foot));
  }

  async download() {
    const { ui, t } = this;
    const session = this.session;
    if (!session) return;
    const url = this.query({ format: 'csv', sep: t.lang === 'fr' ? 'semicolon' : 'comma' });
    let response;
    try {
      response = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` }, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      setText(ui.reportStatus, t.apiError(0, String(e && e.message || e)));
      return;
    }
    if (response.status === 401) { this.onUnauthorized(); return; }
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
      setText(ui.reportStatus, t.apiError(response.status, message));
      return;
    }
    const blob = await response.blob();
    const link = h('a', { href: URL.createObjectURL(blob), download: `borne-report-${ui.reportFrom.value}-${ui.reportTo.value}.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }
}
