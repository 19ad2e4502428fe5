// End-to-end tests of the teacher page and the IT dashboard in headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no
// browser is ever downloaded) against the real daemon binary on a loopback
// port, with a temporary state directory and simulated access points.
//
//   node run.mjs [substring]     run every test, or those whose name matches
//                                (the tests share one daemon and run in order:
//                                a later test may rely on an earlier one)
//
// Environment: BORNE_BIN (default target/debug/borne), CHROMIUM (default
// /usr/bin/chromium), UPDATE_SCREENSHOTS=1 to refresh docs/screenshots/.
// Screenshots of every step go to tests/artifacts/browser/. The last line
// printed is "N passed, M failed"; the exit code is non-zero on failure.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { JULES_FERRY, eventually, freePort, launchChromium, runTests, testList } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const BIN = process.env.BORNE_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(root, 'target'), 'debug', 'borne');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(root, 'tests', 'artifacts', 'browser');
const SCREENSHOTS = path.join(root, 'docs', 'screenshots');
const UPDATE_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1';
const TZ = 'Europe/Paris';

const TOKENS = {
  admin: 'browser-admin-token-0001',
  viewer: 'browser-viewer-token-001',
  teacher: 'browser-teacher-cm1a-001',
  pasteur: 'browser-teacher-pasteur1',
  voltaire: 'browser-direction-volt01',
  condorcet: 'browser-teacher-condorc1',
};

// --- The daemon -----------------------------------------------------------------

/** Wall-clock parts of an instant in Paris. */
function paris(ms) {
  const p = {};
  for (const part of new Intl.DateTimeFormat('en-US', {
    timeZone: TZ, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  }).formatToParts(ms)) p[part.type] = part.value;
  return { date: `${p.year}-${p.month}-${p.day}`, hour: +p.hour % 24, minute: +p.minute, local: `${p.year}-${p.month}-${p.day}T${String(+p.hour % 24).padStart(2, '0')}:${p.minute}` };
}

/** The calendars block's dates: today (Paris) and 200 days later. */
const CALENDAR_DAYS = { today: paris(Date.now()).date, far: paris(Date.now() + 200 * 86400000).date };

function config(stateDir, calendarPort) {
  const n = paris(Date.now());
  // Pasteur: locked since an hour ago, until two hours from now, every day.
  const lockAt = `${n.minute} ${(n.hour + 23) % 24} * * *`;
  const openAt = `${n.minute} ${(n.hour + 2) % 24} * * *`;
  return `# Written by tests/browser/run.mjs
demo: true
timezone: ${TZ}
listen: 127.0.0.1:0
state_dir: ${stateDir}
teacher_session: { default_minutes: 60, max_minutes: 240 }
# The audit pagination test sends 55 requests in a few seconds as one user.
limits: { writes_per_minute: 1000 }
reconciler: { resync_seconds: 30, backoff_max_seconds: 5 }
calendars:
  holidays: { closed: ["${n.date}"] }
  # The dashboard's calendars block: one covered far enough, one URL that fails.
  zone-test: { closed: ["${CALENDAR_DAYS.far}"] }
  zone-url: { url: "http://127.0.0.1:${calendarPort}/Zone-A.ics" }
schedules:
  open: { default_mode: available, rules: [] }
  evening:
    default_mode: available
    rules:
      - { at: "${lockAt}", mode: locked }
      - { at: "${openAt}", mode: available }
  holiday: { calendars: [holidays, zone-test], default_mode: available, rules: [] }
schools:
${JULES_FERRY}  - id: voltaire
    name: École élémentaire Voltaire
    schedule: open
    classrooms:
      - id: vo-cp
        name: CP
        access_points: [ { id: vo-cp-ap1, sim: { latency_ms: 200, clients: 18 } } ]
      - id: vo-ce1
        name: CE1
        access_points: [ { id: vo-ce1-ap1, sim: { latency_ms: 100, fail_rate: 1.0 } } ]
  - id: pasteur
    name: École élémentaire Pasteur
    schedule: evening
    classrooms:
      - id: pa-cm2
        name: CM2
        access_points: [ { id: pa-cm2-ap1, sim: { latency_ms: 100 } } ]
  - id: condorcet
    name: École maternelle Condorcet
    schedule: holiday
    classrooms:
      - id: co-gs
        name: Grande section
        access_points: [ { id: co-gs-ap1, sim: { latency_ms: 100 } } ]
users:
  - { name: admin, role: admin, token: ${TOKENS.admin} }
  - { name: viewer, role: viewer, token: ${TOKENS.viewer} }
  - { name: mme-martin, role: teacher, classrooms: [jf-cm1a, jf-info], token: ${TOKENS.teacher} }
  - { name: m-durand, role: teacher, classrooms: [pa-cm2], token: ${TOKENS.pasteur} }
  - { name: direction-voltaire, role: teacher, schools: [voltaire], token: ${TOKENS.voltaire} }
  - { name: mme-petit, role: teacher, classrooms: [co-gs], token: ${TOKENS.condorcet} }
`;
}

let daemon = null;

function killDaemon() {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    try { process.kill(daemon.pid, 'SIGKILL'); } catch (_) { /* already gone */ }
  }
}
process.on('exit', killDaemon);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => { killDaemon(); process.exit(130); });
}

async function startDaemon(dir) {
  const cfg = path.join(dir, 'borne.yaml');
  fs.writeFileSync(cfg, config(path.join(dir, 'state'), await freePort()));
  const log = fs.createWriteStream(path.join(ARTIFACTS, 'daemon.log'));
  daemon = spawn(BIN, ['run', '--config', cfg], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' },
  });
  let out = '';
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon did not start in 30 s:\n${out}`)), 30000);
    const onData = (chunk) => {
      log.write(chunk);
      out += chunk;
      const m = out.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${m[1]}`);
      }
    };
    daemon.stdout.on('data', onData);
    daemon.stderr.on('data', onData);
    daemon.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the daemon exited (${code}):\n${out}`)); });
    daemon.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
  daemon.stdout.removeAllListeners('data');
  daemon.stderr.removeAllListeners('data');
  daemon.stdout.on('data', (c) => log.write(c));
  daemon.stderr.on('data', (c) => log.write(c));
  await eventually(async () => {
    const r = await fetch(`${base}/readyz`);
    assert.equal(r.status, 200);
  }, 15000, 'daemon ready');
  return base;
}

async function stopDaemon() {
  if (!daemon || daemon.exitCode !== null || daemon.signalCode !== null) return;
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  process.kill(daemon.pid, 'SIGTERM');
  const timer = setTimeout(killDaemon, 10000);
  await exited;
  clearTimeout(timer);
}

// --- Helpers ------------------------------------------------------------------------

let BASE = '';

async function apiCall(token, method, p, body) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(`${BASE}${p}`, init);
  const data = await r.json().catch(() => null);
  return { status: r.status, data };
}

async function apiGet(token, p) {
  const { status, data } = await apiCall(token, 'GET', p);
  assert.equal(status, 200, `GET ${p}: ${JSON.stringify(data)}`);
  return data;
}

async function textOf(locator) {
  // The pages write "Wi-Fi" with a non-breaking hyphen (U+2011).
  return ((await locator.textContent()) || '').replace(/\u2011/g, '-').replace(/\s+/g, ' ').trim();
}

async function expectText(locator, re, timeout = 10000) {
  await eventually(async () => assert.match(await textOf(locator), re), timeout, `text of ${locator}`);
}

let browser = null;
const contexts = [];
const pageErrors = [];

async function newPage(opts = {}) {
  const context = await browser.newContext({
    locale: opts.locale || 'fr-FR',
    timezoneId: TZ,
    viewport: opts.viewport || { width: 1100, height: 760 },
    deviceScaleFactor: opts.scale || 1,
    colorScheme: 'light',
    reducedMotion: 'reduce',
  });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|net::ERR_FAILED/.test(m.text())) {
      pageErrors.push(`${page.url()}: console: ${m.text()}`);
    }
  });
  return page;
}

async function closeContexts() {
  while (contexts.length) await contexts.pop().close().catch(() => {});
}

async function shot(page, name, opts = {}) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: opts.fullPage !== false, animations: 'disabled' });
  if (opts.readme && UPDATE_SCREENSHOTS) {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    fs.copyFileSync(file, path.join(SCREENSHOTS, opts.readme));
  }
}

const card = (page, id) => page.locator(`article[data-classroom="${id}"]`);
const row = (page, id) => page.locator(`tr[data-classroom="${id}"]`);

// --- Tests ------------------------------------------------------------------------------

const { tests, test } = testList();

test('sign-in: link token is taken from the fragment, bad token refused, pasted link accepted, sign out', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/`);
  await page.locator('#signin').waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
  await page.fill('#token-input', 'not-a-token');
  await page.press('#token-input', 'Enter');
  await expectText(page.locator('#signin-message'), /n’est pas reconnu/);
  await page.fill('#token-input', `${BASE}/#token=${TOKENS.teacher}`);
  await page.click('#signin-form button[type=submit]');
  await card(page, 'jf-cm1a').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('borne.teacher.token')), TOKENS.teacher);
  // Signing out in one tab signs out the others (shared classroom computers).
  const other = await page.context().newPage();
  await other.goto(`${BASE}/`);
  await card(other, 'jf-cm1a').waitFor();
  await page.click('#signout');
  await page.locator('#signin').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('borne.teacher.token')), null);
  await other.locator('#signin').waitFor();
  await expectText(other.locator('#signin-message'), /^Vous êtes déconnecté\.$/);
  await other.close();

  // The link: the token leaves the address bar, and a 401 later sends back to sign-in.
  await page.goto(`${BASE}/#token=${TOKENS.teacher}`);
  await card(page, 'jf-cm1a').waitFor();
  assert.ok(!page.url().includes('token'), `token still in the address: ${page.url()}`);
  await page.evaluate(() => localStorage.setItem('borne.teacher.token', 'revoked-token-xyz'));
  await page.reload();
  await page.locator('#signin').waitFor();
  await expectText(page.locator('#signin-message'), /n’est pas reconnu/);
});

test('sign-in: the dashboard signs in like the teacher page (empty code, a link opened in the open tab, sign-out in another tab)', async () => {
  const page = await newPage({ locale: 'en-GB' });
  await page.goto(`${BASE}/admin`);
  await page.locator('#signin').waitFor();
  await page.fill('#token-input', '   ');
  await page.press('#token-input', 'Enter');
  await expectText(page.locator('#signin-message'), /^Enter your access code\.$/);
  assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), 'token-input');
  // A sign-in link opened in a tab already showing the page changes only the fragment.
  await page.evaluate((token) => { location.hash = `token=${token}`; }, TOKENS.viewer);
  await row(page, 'vo-cp').waitFor();
  assert.ok(!page.url().includes('token'), `token still in the address: ${page.url()}`);
  assert.equal(await page.evaluate(() => localStorage.getItem('borne.admin.token')), TOKENS.viewer);
  const other = await page.context().newPage();
  await other.goto(`${BASE}/admin`);
  await row(other, 'vo-cp').waitFor();
  await other.click('#signout');
  await other.locator('#signin').waitFor();
  await page.locator('#signin').waitFor();
  await expectText(page.locator('#signin-message'), /^You are signed out\.$/);
  assert.equal(await page.locator('#signout').isVisible(), false);
  assert.equal(await page.locator('#live').isVisible(), false);
  await other.close();
});

test('teacher: the big button switches Wi-Fi on (keyboard), shows the countdown, and the AP follows', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/#token=${TOKENS.teacher}`);
  const c = card(page, 'jf-cm1a');
  await c.waitFor();
  await expectText(c.locator('.state'), /^Wi-Fi coupé$/);
  await expectText(c.locator('.why'), /Vous pouvez allumer le Wi-Fi/);
  assert.equal(await c.locator('select').inputValue(), '60');
  const options = await c.locator('select option').allTextContents();
  assert.deepEqual(options, ['30 min', '1 h', '1 h 30', '2 h', '2 h 30', '3 h', '3 h 30', '4 h']);
  const toggle = c.locator('button.toggle');
  assert.equal(await textOf(toggle), 'Allumer le Wi-Fi');
  const box = await toggle.boundingBox();
  assert.ok(box.height >= 48 && box.width >= 48, `button is ${box.width}x${box.height}`);
  await expectText(page.locator('#live'), /^En direct$/);
  await shot(page, 'teacher-before');

  await toggle.focus();
  await page.keyboard.press('Enter');
  await expectText(c.locator('.state'), /^Wi-Fi allumé$/);
  await expectText(c.locator('.countdown'), /^Coupure automatique à \d\d:\d\d — dans (59 min|1 h 00)$/);
  await expectText(toggle, /^Couper le Wi-Fi$/);
  assert.equal(await toggle.evaluate((b) => b === document.activeElement), true, 'the button kept the focus');
  await eventually(async () => {
    const s = await apiGet(TOKENS.teacher, '/api/v1/classrooms/jf-cm1a');
    assert.equal(s.wifi, 'on');
    assert.equal(s.reason, 'teacher');
    assert.equal(s.access_points[0].observed, 'on');
  }, 10000, 'the simulated AP is on');
  await c.locator('.apply').waitFor({ state: 'hidden' });
  await toggle.blur();
  await page.setViewportSize({ width: 1000, height: 540 });
  await shot(page, 'teacher', { readme: 'teacher.png', fullPage: false });
});

test('teacher: "+15 min" extends the session', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/#token=${TOKENS.teacher}`);
  const c = card(page, 'jf-cm1a');
  await expectText(c.locator('.state'), /^Wi-Fi allumé$/);
  const before = Date.parse((await apiGet(TOKENS.teacher, '/api/v1/classrooms/jf-cm1a')).until);
  await c.locator('button.extend').click();
  await eventually(async () => {
    const after = Date.parse((await apiGet(TOKENS.teacher, '/api/v1/classrooms/jf-cm1a')).until);
    const gained = (after - before) / 60000;
    assert.ok(gained >= 14 && gained <= 16.5, `extended by ${gained} min`);
  }, 10000, 'session extended');
  await expectText(c.locator('.countdown'), /dans 1 h 1[45]$/);
});

test('teacher: a locked classroom says until when and why, and its button is disabled', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/#token=${TOKENS.pasteur}`);
  const c = card(page, 'pa-cm2');
  await c.waitFor();
  await expectText(c.locator('.why'), /^Le Wi-Fi est verrouillé jusqu’à (demain )?\d\d:\d\d \(hors temps scolaire\)$/);
  assert.equal(await c.locator('button.toggle').isDisabled(), true);
  assert.equal(await c.locator('button.toggle').getAttribute('aria-describedby'), 'c-pa-cm2-why');
  assert.equal(await c.locator('select').isVisible(), false);
  await shot(page, 'teacher-locked');

  const holiday = await newPage();
  await holiday.goto(`${BASE}/#token=${TOKENS.condorcet}`);
  const h = card(holiday, 'co-gs');
  await expectText(h.locator('.why'), /^Le Wi-Fi est verrouillé .*\(vacances\)$/);
  assert.equal(await h.locator('button.toggle').isDisabled(), true);
  await shot(holiday, 'teacher-holiday');
});

test('teacher: English when the browser prefers it', async () => {
  const page = await newPage({ locale: 'en-GB' });
  await page.goto(`${BASE}/#token=${TOKENS.teacher}`);
  const c = card(page, 'jf-cm1a');
  await c.waitFor();
  assert.equal(await page.locator('html').getAttribute('lang'), 'en');
  await expectText(page.locator('#app-title'), /^Your classrooms’ Wi-Fi$/);
  await expectText(c.locator('.state'), /^Wi-Fi on$/);
  await expectText(c.locator('button.toggle'), /^Turn Wi-Fi off$/);
  await expectText(c.locator('.countdown'), /^Switches off automatically at \d\d:\d\d — in \d+ h \d\d min$/);
  await expectText(card(page, 'jf-info').locator('button.toggle'), /^Turn Wi-Fi on$/);
  await expectText(page.locator('#signout'), /^Sign out$/);
  await shot(page, 'teacher-en');
});

test('teacher: unreachable AP, a 409 shown as a message, and the event stream recovering by itself', async () => {
  const page = await newPage();
  // Cut the event stream: the page must say it is reconnecting.
  await page.route('**/api/v1/events', (route) => route.abort());
  await page.goto(`${BASE}/#token=${TOKENS.voltaire}`);
  const cp = card(page, 'vo-cp');
  await cp.waitFor();
  await expectText(page.locator('#live'), /^Reconnexion…$/);

  // IT sets an override the page cannot hear about; pressing the button gets a 409.
  const put = await apiCall(TOKENS.admin, 'PUT', '/api/v1/classrooms/vo-cp/override', { wifi: 'off', until: null, reason: 'Maintenance' });
  assert.equal(put.status, 200, JSON.stringify(put.data));
  await cp.locator('button.toggle').click();
  await expectText(cp.locator('.card-message'), /^Impossible : le service informatique a bloqué le Wi-Fi \(Maintenance\)\.$/);
  await shot(page, 'teacher-409');

  // The stream comes back by itself (backoff), with the current state.
  await page.unroute('**/api/v1/events');
  await expectText(page.locator('#live'), /^En direct$/, 25000);
  await expectText(cp.locator('.why'), /^Coupé par le service informatique : Maintenance \(jusqu’à nouvel ordre\)$/);
  assert.equal(await cp.locator('button.toggle').isDisabled(), true);

  // Cleared: back to available, live.
  const del = await apiCall(TOKENS.admin, 'DELETE', '/api/v1/classrooms/vo-cp/override');
  assert.equal(del.status, 200);
  await expectText(cp.locator('.why'), /Vous pouvez allumer le Wi-Fi/);
  assert.equal(await cp.locator('button.toggle').isDisabled(), false);

  // CE1's access point never answers.
  await expectText(card(page, 'vo-ce1').locator('.apply'),
    /^La borne ne répond pas — le service informatique est prévenu$/, 15000);
  await shot(page, 'teacher-unreachable');
});

test('admin: override a school in two clicks plus a reason; the teacher page follows without reload', async () => {
  const teacher = await newPage();
  await teacher.goto(`${BASE}/#token=${TOKENS.voltaire}`);
  const cp = card(teacher, 'vo-cp');
  await expectText(cp.locator('.why'), /Vous pouvez allumer le Wi-Fi/);
  await teacher.waitForFunction(() => document.querySelector('#live')?.textContent === 'En direct');
  await teacher.evaluate(() => { window.__notReloaded = true; });

  const admin = await newPage({ locale: 'en-GB', viewport: { width: 1400, height: 900 } });
  await admin.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  await row(admin, 'vo-cp').waitFor();
  await admin.locator('section[data-school="voltaire"] button[data-action="override-school"]').click();
  await expectText(admin.locator('#override-scope'), /^École élémentaire Voltaire \(2 classrooms\)$/);
  assert.equal(await admin.locator('input[name="wifi"][value="off"]').isChecked(), true);
  // Without a reason, nothing is sent.
  await admin.click('#override-apply');
  await expectText(admin.locator('#override-error'), /Give a reason/);
  await admin.fill('#override-reason', 'Examen de fin d’année');
  await shot(admin, 'admin-override-dialog', { fullPage: false });
  await admin.click('#override-apply');
  await expectText(admin.locator('#app-message'), /^Override “off” set on 2 classrooms\.$/);
  await expectText(row(admin, 'vo-cp').locator('td').nth(1), /IT override: Examen de fin d’année \(admin\)/);

  await expectText(cp.locator('.why'), /^Coupé par le service informatique : Examen de fin d’année \(jusqu’à nouvel ordre\)$/);
  assert.equal(await cp.locator('button.toggle').isDisabled(), true);
  assert.equal(await teacher.evaluate(() => window.__notReloaded), true, 'the teacher page reloaded');
  await shot(teacher, 'teacher-overridden');
  await admin.evaluate(() => document.querySelector('#app-message')?.setAttribute('hidden', ''));
  await admin.waitForTimeout(300);
  await shot(admin, 'admin', { readme: 'admin.png' });
});

test('admin: counts match the API, and the access point view lists the unreachable first', async () => {
  const admin = await newPage({ locale: 'en-GB', viewport: { width: 1400, height: 900 } });
  await admin.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  await row(admin, 'vo-cp').waitFor();
  const { classrooms } = await apiGet(TOKENS.admin, '/api/v1/classrooms');
  const on = classrooms.filter((s) => s.wifi === 'on').length;
  const unreachable = classrooms.flatMap((s) => s.access_points).filter((a) => !a.reachable).length;
  const overrides = classrooms.filter((s) => s.reason === 'override').length;
  assert.ok(on >= 1 && unreachable >= 1 && overrides >= 2, `on ${on}, unreachable ${unreachable}, overrides ${overrides}`);
  const count = (k) => admin.locator(`li[data-count="${k}"] .count-value`);
  await expectText(count('on'), new RegExp(`^${on}$`));
  await expectText(count('off'), new RegExp(`^${classrooms.length - on}$`));
  await expectText(count('unreachable'), new RegExp(`^${unreachable}$`));
  await expectText(count('override'), new RegExp(`^${overrides}$`));

  // Filters.
  await admin.selectOption('#state-filter', 'unreachable');
  await expectText(admin.locator('#shown'), new RegExp(`^1 of ${classrooms.length} classrooms shown$`));
  assert.equal(await row(admin, 'vo-ce1').isVisible(), true);
  assert.equal(await row(admin, 'jf-cm1a').isVisible(), false);
  await admin.selectOption('#state-filter', 'all');
  await admin.fill('#filter', 'informatique');
  await expectText(admin.locator('#shown'), new RegExp(`^1 of ${classrooms.length} classrooms shown$`));
  assert.equal(await row(admin, 'jf-info').isVisible(), true);
  assert.equal(await admin.locator('section[data-school="voltaire"]').isVisible(), false);
  await admin.fill('#filter', '');

  await admin.click('#tab-aps');
  const first = admin.locator('#aps tbody tr').first();
  await expectText(first.locator('th'), /^vo-ce1-ap1$/);
  await expectText(first, /simulated failure of vo-ce1-ap1/);
  await shot(admin, 'admin-access-points');
});

test('admin: the server clock block shows /readyz (synchronised, require_sync, last step)', async () => {
  const ready = await (await fetch(`${BASE}/readyz`)).json();
  const admin = await newPage({ locale: 'fr-FR', viewport: { width: 1400, height: 900 } });
  await admin.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  await row(admin, 'vo-cp').waitFor();
  const clock = admin.locator('#clock');
  await clock.waitFor();
  // What the real daemon says on this machine (the kernel decides).
  assert.equal(await clock.getAttribute('data-synchronized'), String(ready.clock.synchronized));
  assert.equal(await clock.getAttribute('data-require-sync'), 'false');
  await expectText(clock.locator('.clock-sync'),
    ready.clock.synchronized ? /^Horloge du serveur synchronisée$/ : /^Horloge du serveur non synchronisée$/);
  await expectText(clock.locator('.clock-require'), /clock\.require_sync désactivé/);
  await expectText(clock.locator('.clock-step'), /^aucun saut d’horloge depuis le démarrage$/);

  // The other states, from a /readyz body as the daemon writes it under
  // require_sync with an unsynchronised clock that stepped back 26 h.
  const english = await newPage({ locale: 'en-GB', viewport: { width: 1400, height: 900 } });
  await english.route('**/readyz', (route) => route.fulfill({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify({
      ...ready,
      clock: {
        synchronized: false, require_sync: true, kernel_synchronized: true, plausible: false,
        last_step: { at: '2026-12-01T08:00:10Z', seconds: -93600.0 },
      },
    }),
  }));
  await english.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  await row(english, 'vo-cp').waitFor();
  const c = english.locator('#clock');
  await c.waitFor();
  assert.equal(await c.getAttribute('data-require-sync'), 'true');
  assert.match(await c.getAttribute('class'), /notice-warn/);
  await expectText(c, /^Server clock not synchronised \(before the build date of this borne\) · no new “on” until it is \(clock\.require_sync\) · last clock step: -93600 s, seen 01\/12\/2026,? 09:00:10$/);
  await shot(english, 'admin-clock', { fullPage: false });
});

test('admin: the audit log shows the actions, newest first, filterable by user and classroom, paginated', async () => {
  const admin = await newPage({ locale: 'en-GB', viewport: { width: 1400, height: 900 } });
  await admin.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  await row(admin, 'vo-cp').waitFor();
  await admin.click('#tab-audit');
  const rows = admin.locator('#audit tbody tr');
  await eventually(async () => assert.ok((await rows.count()) > 5));
  const all = await rows.allTextContents();
  // A school override is one row for the request (issue 16), not one per classroom.
  assert.ok(all.some((r) => r.includes('override.set') && r.includes('scope school voltaire,') && r.includes('Examen de fin d’année')), 'school override audited');
  assert.ok(all.some((r) => r.includes('teacher.on') && r.includes('mme-martin')), 'teacher request audited');
  // Newest first.
  const ids = await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.id)));
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a));

  await admin.fill('#audit-user', 'mme-martin');
  await admin.click('#audit-form button[type=submit]');
  await eventually(async () => {
    const texts = await rows.allTextContents();
    assert.ok(texts.length >= 2);
    assert.ok(texts.every((r) => r.includes('mme-martin')), texts.join('\n'));
  });
  await admin.fill('#audit-user', '');
  await admin.selectOption('#audit-classroom', 'vo-cp');
  await admin.click('#audit-form button[type=submit]');
  await eventually(async () => {
    const texts = await rows.allTextContents();
    assert.ok(texts.length >= 3);
    assert.ok(texts.every((r) => r.includes('vo-cp')), texts.join('\n'));
  });
  await shot(admin, 'admin-audit');

  // Pagination: 55 refused requests on the locked classroom, two pages of 50.
  for (let i = 0; i < 55; i += 1) {
    const r = await apiCall(TOKENS.pasteur, 'POST', '/api/v1/classrooms/pa-cm2/wifi', { wifi: 'on', minutes: 30 });
    assert.equal(r.status, 409);
  }
  await admin.selectOption('#audit-classroom', 'pa-cm2');
  await admin.click('#audit-form button[type=submit]');
  await eventually(async () => assert.equal(await rows.count(), 50));
  assert.equal(await admin.locator('#audit-older').isVisible(), true);
  await admin.click('#audit-older');
  await eventually(async () => assert.ok((await rows.count()) >= 55));
  await expectText(admin.locator('#audit-status'), /^Start of the log reached\.$/);
  assert.equal(await admin.locator('#audit-older').isVisible(), false);
  const paged = await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.id)));
  assert.equal(new Set(paged).size, paged.length, 'an entry shown twice');
  assert.deepEqual(paged, [...paged].sort((a, b) => b - a));
  assert.ok((await rows.allTextContents()).every((r) => r.includes('pa-cm2')));
});

test('admin: clear a school, then override the whole city until a time, then clear all', async () => {
  const teacher = await newPage();
  await teacher.goto(`${BASE}/#token=${TOKENS.voltaire}`);
  const cp = card(teacher, 'vo-cp');
  await expectText(cp.locator('.why'), /Examen de fin d’année/);

  const admin = await newPage({ locale: 'en-GB', viewport: { width: 1400, height: 900 } });
  await admin.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  await row(admin, 'vo-cp').waitFor();
  await admin.locator('section[data-school="voltaire"] button[data-action="clear-school"]').click();
  await expectText(admin.locator('#clear-text'), /École élémentaire Voltaire/);
  await admin.click('#clear-apply');
  await expectText(admin.locator('#app-message'), /^Override cleared on 2 classrooms\.$/);
  await expectText(cp.locator('.why'), /Vous pouvez allumer le Wi-Fi/);

  // The whole city, until two hours from now (typed in Paris time).
  const until = Date.now() + 2 * 3600 * 1000;
  const local = paris(until);
  await admin.click('#override-city');
  await expectText(admin.locator('#override-scope'), /^The whole city \(7 classrooms\)$/);
  await admin.fill('#override-reason', 'Panne du réseau');
  await admin.fill('#override-until', local.local);
  await admin.click('#override-apply');
  await expectText(admin.locator('#app-message'), /^Override “off” set on 7 classrooms\.$/);
  await expectText(admin.locator('li[data-count="override"] .count-value'), /^7$/);
  const hhmm = `${String(local.hour).padStart(2, '0')}:${String(local.minute).padStart(2, '0')}`;
  await expectText(cp.locator('.why'), new RegExp(`^Coupé par le service informatique : Panne du réseau \\(jusqu’à (demain )?${hhmm}\\)$`));
  const s = await apiGet(TOKENS.admin, '/api/v1/classrooms/vo-cp');
  assert.equal(paris(Date.parse(s.override.until)).local, local.local);

  await admin.click('#clear-city');
  await admin.click('#clear-apply');
  await expectText(admin.locator('#app-message'), /^Override cleared on 7 classrooms\.$/);
  await expectText(admin.locator('li[data-count="override"] .count-value'), /^0$/);
  await expectText(cp.locator('.why'), /Vous pouvez allumer le Wi-Fi/);
});

test('admin: plan an override for tomorrow afternoon; the teacher page announces it; cancel it from the dashboard', async () => {
  const teacher = await newPage();
  await teacher.goto(`${BASE}/#token=${TOKENS.teacher}`);
  const info = card(teacher, 'jf-info');
  await info.waitFor();
  assert.equal(await info.locator('.planned-list').isHidden(), true);

  const admin = await newPage({ locale: 'en-GB', viewport: { width: 1400, height: 900 } });
  await admin.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  const r = row(admin, 'jf-info');
  await r.waitFor();
  const before = (await apiGet(TOKENS.admin, '/api/v1/classrooms/jf-info')).wifi;
  const tomorrow = paris(Date.now() + 24 * 3600 * 1000).date;
  await r.locator('button[data-action="override"]').click();
  await admin.check('input[name="wifi"][value="on"]');
  await admin.fill('#override-reason', 'atelier périscolaire');
  // A start after the end is caught before anything is sent.
  await admin.fill('#override-from', `${tomorrow}T17:00`);
  await admin.fill('#override-until', `${tomorrow}T16:30`);
  await admin.click('#override-apply');
  await expectText(admin.locator('#override-error'), /^The start must be before the end\.$/);
  await admin.fill('#override-from', `${tomorrow}T14:00`);
  await admin.click('#override-apply');
  await expectText(admin.locator('#app-message'), /^Override “on” set on 1 classroom\.$/);
  await expectText(r.locator('.planned-list'),
    /^Planned Wi-Fi: switched on by IT from tomorrow 14:00 to tomorrow 16:30 \(atelier périscolaire\) planned by admin Cancel$/);
  const s = await apiGet(TOKENS.admin, '/api/v1/classrooms/jf-info');
  assert.equal(s.wifi, before, 'a planned override counts nowhere before its start');
  assert.equal(s.override, null);
  assert.equal(paris(Date.parse(s.planned_overrides[0].from)).local, `${tomorrow}T14:00`);

  // The teacher page announces it without a reload, in French first.
  await expectText(info.locator('.planned-list'),
    /^Wi-Fi prévu : allumé par la DSI de demain 14:00 à demain 16:30 \(atelier périscolaire\)$/);
  await shot(teacher, 'teacher-planned-override');

  await r.locator('button[data-action="cancel-planned"]').click();
  await expectText(admin.locator('#app-message'), /^Planned override cancelled\.$/);
  await eventually(async () => assert.equal(await r.locator('.planned-list').count(), 0));
  await eventually(async () => assert.equal(await info.locator('.planned-list').isHidden(), true));
  assert.deepEqual((await apiGet(TOKENS.admin, '/api/v1/classrooms/jf-info')).planned_overrides, []);
});

test('admin: the report tab draws a chart, its totals equal the API, and downloads the same rows as CSV', async () => {
  const admin = await newPage({ locale: 'en-GB', viewport: { width: 1400, height: 900 } });
  await admin.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  await row(admin, 'vo-cp').waitFor();
  await admin.click('#tab-report');
  const today = paris(Date.now()).date;
  await admin.fill('#report-from', today);
  await admin.fill('#report-to', today);
  await admin.selectOption('#report-group', 'classroom');
  await admin.selectOption('#report-period', 'day');
  await admin.click('#report-form button[type=submit]');
  const api = await apiGet(TOKENS.admin, `/api/v1/report?from=${today}&to=${today}&group=classroom&period=day`);
  const sum = (f) => api.rows.reduce((a, r) => a + f(r), 0);
  assert.ok(sum((r) => r.on_seconds) > 0, 'earlier tests switched Wi-Fi on today');
  await eventually(async () => {
    assert.equal(await admin.locator('#report tbody tr').count(), api.rows.length);
  });
  // The totals row adds up what the API says (seconds in data-value; the
  // cells show hours). The day is still running: on-time only grows.
  const total = async (field) => Number(await admin.locator(`#report tfoot td[data-field="${field}"]`).getAttribute('data-value'));
  const after = await apiGet(TOKENS.admin, `/api/v1/report?from=${today}&to=${today}&group=classroom&period=day`);
  const sumAfter = (f) => after.rows.reduce((a, r) => a + f(r), 0);
  const on = await total('on');
  assert.ok(on >= sum((r) => r.on_seconds) - 1 && on <= sumAfter((r) => r.on_seconds) + 1, `on ${on}`);
  assert.equal(await total('sessions'), sumAfter((r) => r.sessions.count));
  assert.equal(await total('overrides'), sumAfter((r) => r.overrides.count));
  assert.equal(await total('refused'), sumAfter((r) => Object.values(r.refused).reduce((a, b) => a + b, 0)));
  // The chart: on-hours per week per school, drawn by the page's script.
  const bars = admin.locator('#report-chart svg rect.bar');
  await eventually(async () => assert.ok((await bars.count()) >= 1));
  const schools = new Set(await bars.evaluateAll((rs) => rs.map((r) => r.dataset.school)));
  assert.ok(schools.has('voltaire') && schools.has('jules-ferry'), [...schools].join(','));
  await shot(admin, 'admin-report');

  // CSV: the same rows as the table (a header, then one line each).
  const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('#report-csv')]);
  const file = await download.path();
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.trim().split(/\r?\n/);
  assert.match(lines[0], /^school,classroom,period_start,on_seconds,unknown_seconds,/);
  assert.equal(lines.length - 1, api.rows.length);
  assert.equal(download.suggestedFilename(), `borne-report-${today}-${today}.csv`);
  assert.deepEqual(pageErrors, []);
});

test('admin: the calendars block shows coverage, source and fetch, and warns of a short coverage and a failed fetch', async () => {
  // The daemon fetches URL calendars at start: wait for its failure.
  await eventually(async () => {
    const ready = await (await fetch(`${BASE}/readyz`)).json();
    assert.ok(ready.calendars['zone-url'].error, JSON.stringify(ready.calendars));
  }, 30000, 'the URL calendar failed');
  const { today, far } = CALENDAR_DAYS;
  const page = await newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`${BASE}/admin#token=${TOKENS.admin}`);
  const block = page.locator('#calendars');
  await expectText(block.locator('summary'), /^Calendriers scolaires : 2 calendriers à mettre à jour$/);
  assert.equal(await block.evaluate((d) => d.open), true, 'opened: the warning is seen');
  assert.match(await block.getAttribute('class'), /notice-warn/);
  const cal = (name) => block.locator(`tr[data-calendar="${name}"]`);
  const cells = async (name) => Promise.all([1, 2, 3, 4, 5].map((i) => textOf(cal(name).locator(`:is(th, td):nth-child(${i})`))));
  const [, hEnd, hSource, hFetched, hState] = await cells('holidays');
  assert.deepEqual([hEnd, hSource, hFetched], [today, 'local', '—']);
  assert.match(hState, new RegExp(`^Vacances connues seulement jusqu’au ${today} \\(moins de 60 jours\\)`));
  const [, zEnd, , , zState] = await cells('zone-test');
  assert.deepEqual([zEnd, zState], [far, 'À jour']);
  const [, uEnd, uSource, uFetched, uState] = await cells('zone-url');
  assert.equal(uEnd, '— (hors horaire, fin non contrôlée)', 'never fetched, used by no schedule');
  assert.match(uSource, /^url:http:\/\/127\.0\.0\.1:\d+\/Zone-A\.ics$/);
  assert.equal(uFetched, '—');
  assert.match(uState, /^Échec du dernier téléchargement \(l’ancienne copie reste utilisée\) : ./);
  await shot(page, 'admin-calendars');

  // Closed by hand, it stays closed while nothing changes; in English too.
  await block.locator('summary').click();
  assert.equal(await block.evaluate((d) => d.open), false);
  const en = await newPage({ locale: 'en-GB' });
  await en.goto(`${BASE}/admin#token=${TOKENS.viewer}`);
  await expectText(en.locator('#calendars summary'), /^School calendars: 2 calendars to update$/);
  await expectText(en.locator('#calendars tr[data-calendar="zone-test"] td').last(), /^Up to date$/);
});

test('admin: a viewer is read-only (in French); a teacher is sent to the teacher page', async () => {
  // In French this time: the dashboard has both languages.
  const viewer = await newPage({ locale: 'fr-FR', viewport: { width: 1400, height: 900 } });
  await viewer.goto(`${BASE}/admin#token=${TOKENS.viewer}`);
  await row(viewer, 'vo-cp').waitFor();
  assert.equal(await viewer.locator('html').getAttribute('lang'), 'fr');
  await expectText(viewer.locator('#readonly'), /^Lecture seule/);
  await expectText(viewer.locator('li[data-count="unreachable"] .count-label'), /^Bornes injoignables$/);
  assert.equal(await viewer.locator('button[data-action]').count(), 0);
  assert.equal(await viewer.locator('#city-actions').isVisible(), false);
  // The steering committee's role reads the audit log and the report (issue 16).
  assert.equal(await viewer.locator('#tab-audit').isVisible(), true);
  await viewer.click('#tab-report');
  await expectText(viewer.locator('#tab-report'), /^Rapport$/);
  await eventually(async () => assert.ok((await viewer.locator('#report tbody tr').count()) >= 1));
  await viewer.click('#tab-aps');
  await expectText(viewer.locator('#aps tbody tr').first().locator('th'), /^vo-ce1-ap1$/);
  await shot(viewer, 'admin-viewer');

  const teacher = await newPage({ locale: 'en-GB' });
  await teacher.goto(`${BASE}/admin#token=${TOKENS.teacher}`);
  await teacher.locator('#not-for-you').waitFor();
  assert.equal(await teacher.locator('#not-for-you a').getAttribute('href'), '/');
  assert.equal(await teacher.locator('#app').isVisible(), false);
  await shot(teacher, 'admin-teacher');
});

test('layout: the teacher page reflows at 320 px wide (400% zoom) and at 200% zoom', async () => {
  const narrow = await newPage({ viewport: { width: 320, height: 640 } });
  await narrow.goto(`${BASE}/#token=${TOKENS.teacher}`);
  await card(narrow, 'jf-info').waitFor();
  const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `horizontal overflow of ${overflow} px at 320 px`);
  await shot(narrow, 'teacher-320px');

  const zoomed = await newPage({ viewport: { width: 640, height: 480 }, scale: 2 });
  await zoomed.goto(`${BASE}/#token=${TOKENS.teacher}`);
  await card(zoomed, 'jf-info').waitFor();
  const o2 = await zoomed.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(o2 <= 0, `horizontal overflow of ${o2} px`);
  await shot(zoomed, 'teacher-zoom-200');
});

// --- Runner ----------------------------------------------------------------------------

async function main() {
  const filter = process.argv[2] || '';
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  if (!fs.existsSync(BIN)) throw new Error(`no daemon binary at ${BIN}: run cargo build first`);
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium chromium-driver`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'borne-browser-'));
  let passed = 0;
  let failed = 0;
  try {
    BASE = await startDaemon(dir);
    console.log(`daemon ${BIN} (pid ${daemon.pid}) on ${BASE}`);
    browser = await launchChromium(chromium, CHROMIUM);
    ({ passed, failed } = await runTests(tests, { filter, artifacts: ARTIFACTS, contexts, pageErrors }));
  } catch (e) {
    failed += 1;
    console.log(`not ok - setup\n  ${String(e.stack || e).split('\n').join('\n  ')}`);
  } finally {
    await closeContexts();
    if (browser) await browser.close().catch(() => {});
    await stopDaemon().catch(() => killDaemon());
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`artifacts: ${path.relative(process.cwd(), ARTIFACTS) || ARTIFACTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}

main();
