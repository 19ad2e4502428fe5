// Single sign-on (issue 18) end to end in headless Chromium: the real
// daemon binary and the real OpenID Provider of tests/oidc (oidc-provider),
// both on loopback ports chosen here, the provider's login form filled in
// by the browser.
//
//   node sso.mjs [substring]
//
// Environment as run.mjs (BORNE_BIN, CHROMIUM). Needs `npm ci` in
// tests/oidc (run.sh does it). The last line printed is "N passed, M failed".

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { JULES_FERRY, eventually, freePort, launchChromium, runTests, testList } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const BIN = process.env.BORNE_BIN || path.join(process.env.CARGO_TARGET_DIR || path.join(root, 'target'), 'debug', 'borne');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(root, 'tests', 'artifacts', 'browser-sso');
const ADMIN_TOKEN = 'sso-admin-token-0001';
const TEACHER = { login: 'c.martin', password: 'martin-password' };
const IT = { login: 'it.admin', password: 'admin-password' };
const SECRET = 'borne-test-secret';

// --- The provider and the daemon (killed by PID at exit) ---------------------------

const children = [];
function killAll() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { process.kill(c.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killAll(); process.exit(130); });

function startChild(cmd, args, opts, ready, what) {
  const log = fs.createWriteStream(path.join(ARTIFACTS, `${what}.log`));
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 30 s:\n${out}`)), 30000);
    const onData = (chunk) => {
      log.write(chunk);
      out += chunk;
      if (ready(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}):\n${out}`)); });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function config(port, providerPort, stateDir) {
  return `# Written by tests/browser/sso.mjs
timezone: Europe/Paris
listen: 127.0.0.1:${port}
public_url: http://127.0.0.1:${port}
state_dir: ${stateDir}
demo: true
schedules:
  open: { default_mode: available, rules: [] }
schools:
${JULES_FERRY}users:
  - { name: admin, role: admin, token: ${ADMIN_TOKEN} }
  - { name: mme-martin, role: teacher, login: c.martin, classrooms: [jf-cm1a] }
oidc:
  issuer: http://127.0.0.1:${providerPort}
  client_id: borne
  client_secret_file: oidc-secret
  scopes: [openid, profile, email, groups]
  roles_claim: groups
  retry_seconds: 1
  groups:
    - { group: dsi-ecoles, role: admin }
`;
}

let BASE = '';
let ISSUER = '';
let ATTACKER = '';

/** Another site's page (a plain page on another loopback port), where the
 *  cross-origin requests start from. */
function startAttacker() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><html><body><p>another site</p></body></html>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function api(method, p, body) {
  const init = { method, headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(`${BASE}${p}`, init);
  return { status: r.status, data: await r.json().catch(() => null) };
}

// --- Browser -------------------------------------------------------------------------

let browser = null;
const contexts = [];
const pageErrors = [];

async function newPage() {
  const context = await browser.newContext({ locale: 'fr-FR', timezoneId: 'Europe/Paris', viewport: { width: 1100, height: 760 } });
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

async function signInAtProvider(page, who) {
  await page.waitForURL((u) => u.origin === ISSUER && u.pathname.startsWith('/interaction/'));
  await page.fill('#login', who.login);
  await page.fill('#password', who.password);
  await page.click('#submit');
}

const { tests, test } = testList();

test('teacher: page → provider login → back → their classroom → the button → the AP is on; sign-out', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/`);
  const button = page.locator('#sso-button');
  await button.waitFor();
  assert.equal((await button.textContent()).trim(), 'Se connecter avec l’ENT');
  assert.equal(await page.locator('#signin-form').isVisible(), true, 'the token form stays');
  await page.screenshot({ path: path.join(ARTIFACTS, 'teacher-sso-button.png') });
  await button.click();
  await signInAtProvider(page, TEACHER);
  await page.waitForURL(`${BASE}/`);
  const card = page.locator('article[data-classroom="jf-cm1a"]');
  await card.waitFor();
  assert.equal(await page.locator('article[data-classroom]').count(), 1, 'only her classroom');
  assert.match(await page.locator('#who').textContent(), /mme-martin/);
  await card.locator('button.toggle').click();
  await eventually(async () => {
    const { data } = await api('GET', '/api/v1/classrooms/jf-cm1a');
    assert.equal(data.wifi, 'on');
    assert.ok(data.access_points.every((a) => a.observed === 'on'), JSON.stringify(data.access_points));
  }, 15000, 'the AP switched on');
  const { data: audit } = await api('GET', '/api/v1/audit?classroom=jf-cm1a');
  const line = audit.entries.find((e) => e.action === 'teacher.on');
  assert.equal(line.actor, 'mme-martin');
  assert.equal(line.via, 'oidc');
  await page.screenshot({ path: path.join(ARTIFACTS, 'teacher-signed-in.png') });

  // Sign-out: borne's session ends, then the provider's sign-out page.
  await page.click('#signout');
  await page.waitForURL((u) => u.origin === ISSUER);
  const confirm = page.locator('button[autofocus], form button[type=submit], button').first();
  await confirm.click();
  await page.waitForURL((u) => u.origin === BASE);
  await page.locator('#sso-button').waitFor();
  const s = await page.evaluate(async () => (await fetch('/auth/session')).json());
  assert.equal(s.user, null);
});

test('admin: IT signs in to /admin through a group mapping', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/admin`);
  await page.locator('#sso-button').click();
  await signInAtProvider(page, IT);
  await page.waitForURL(`${BASE}/admin`);
  await eventually(async () => assert.equal(await page.locator('#app').isVisible(), true), 15000, 'dashboard shown');
  assert.match(await page.locator('#who').textContent(), /it\.admin/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'admin-signed-in.png') });
});

test('csrf: a cross-origin form post and a cross-origin fetch ride on the cookie and get 403 csrf', async () => {
  const page = await newPage();
  await page.goto(`${BASE}/`);
  await page.locator('#sso-button').click();
  await signInAtProvider(page, TEACHER);
  await page.locator('article[data-classroom="jf-cm1a"]').waitFor();
  await api('POST', '/api/v1/classrooms/jf-cm1a/wifi', { wifi: 'off' });
  // Another origin on the same site (same host, another port): the Lax
  // cookie is sent, so only the CSRF rule stands in the way.
  const target = `${BASE}/api/v1/classrooms/jf-cm1a/wifi`;
  await page.goto(`${ATTACKER}/`);
  const fetched = page.waitForResponse((r) => r.url() === target && r.request().method() === 'POST');
  await page.evaluate((url) => {
    fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: '{"wifi":"on"}' })
      .catch(() => {});
  }, target);
  const r1 = await fetched;
  // An opaque answer to the page (no-cors), but the browser saw the 403:
  // the cookie went along (without it the answer would be 401), and the
  // CSRF rule refused it.
  assert.equal(r1.status(), 403);

  const posted = page.waitForResponse((r) => r.url() === target && r.request().method() === 'POST');
  await page.evaluate((url) => {
    const f = document.createElement('form');
    f.method = 'POST';
    f.action = url;
    f.enctype = 'text/plain';
    const i = document.createElement('input');
    i.name = '{"wifi":"on","x":"';
    i.value = '"}';
    f.append(i);
    document.body.append(f);
    f.submit();
  }, target);
  const r2 = await posted;
  assert.equal(r2.status(), 403);
  await page.waitForLoadState();
  assert.match(await page.locator('body').textContent(), /"error":\s*"csrf"/);
  const { data } = await api('GET', '/api/v1/classrooms/jf-cm1a');
  assert.equal(data.wifi, 'off', 'nothing was switched');
});

// --- Runner ----------------------------------------------------------------------------

async function main() {
  const filter = process.argv[2] || '';
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'borne-sso-'));
  let passed = 0;
  let failed = 0;
  let attacker = null;
  try {
    if (!fs.existsSync(path.join(root, 'tests', 'oidc', 'node_modules', 'oidc-provider'))) {
      throw new Error('the OpenID provider is not installed: run npm ci in tests/oidc');
    }
    const port = await freePort();
    const providerPort = await freePort();
    BASE = `http://127.0.0.1:${port}`;
    attacker = await startAttacker();
    ATTACKER = `http://127.0.0.1:${attacker.address().port}`;
    ISSUER = `http://127.0.0.1:${providerPort}`;
    await startChild(process.execPath, [
      path.join(root, 'tests', 'oidc', 'provider.mjs'), '--port', String(providerPort),
      '--redirect-uri', `${BASE}/auth/callback`, '--post-logout-redirect-uri', `${BASE}/`,
      '--client-secret', SECRET,
    ], { cwd: path.join(root, 'tests', 'oidc') }, (out) => out.includes('oidc-provider ready'), 'provider');
    fs.writeFileSync(path.join(dir, 'oidc-secret'), `${SECRET}\n`);
    const cfg = path.join(dir, 'borne.yaml');
    fs.writeFileSync(cfg, config(port, providerPort, path.join(dir, 'state')));
    const daemon = await startChild(BIN, ['run', '--config', cfg], { env: { ...process.env, RUST_LOG: 'info' } },
      (out) => /listening|http:\/\/127\.0\.0\.1/.test(out), 'daemon');
    daemon.stdin.end();
    await eventually(async () => {
      const s = await (await fetch(`${BASE}/auth/session`)).json();
      assert.equal(s.oidc.available, true);
    }, 20000, 'sign-in available');
    browser = await launchChromium(chromium, CHROMIUM);
    ({ passed, failed } = await runTests(tests, { filter, artifacts: ARTIFACTS, contexts, pageErrors }));
  } catch (e) {
    failed += 1;
    console.log(`not ok - setup\n  ${String(e.stack || e).split('\n').join('\n  ')}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (attacker) attacker.close();
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        process.kill(c.pid, 'SIGTERM');
        const timer = setTimeout(() => { try { process.kill(c.pid, 'SIGKILL'); } catch (_) { /* gone */ } }, 10000);
        await gone;
        clearTimeout(timer);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}

// Exit at once: the 90 s race timers of finished tests would keep Node alive.
main().then(() => process.exit());
