// What the browser suites (run.mjs, sso.mjs) share: waiting for evidence,
// launching Debian's Chromium, and running the tests in order with a
// screenshot of every page of a failed test.

import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';

/** A loopback port nothing listens on now (bound, then closed). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * School `jules-ferry` on schedule `open`, as an item of `schools:` in a
 * configuration both suites write: CM1 A, CE2 B, and the computer room
 * with two access points (simulated, with clients).
 */
export const JULES_FERRY = `  - id: jules-ferry
    name: École élémentaire Jules Ferry
    schedule: open
    classrooms:
      - id: jf-cm1a
        name: CM1 A
        access_points: [ { id: jf-cm1a-ap1, sim: { latency_ms: 150, clients: 24 } } ]
      - id: jf-ce2b
        name: CE2 B
        access_points: [ { id: jf-ce2b-ap1, sim: { latency_ms: 300, clients: 21 } } ]
      - id: jf-info
        name: Salle informatique
        access_points:
          - { id: jf-info-ap1, sim: { latency_ms: 100, clients: 15 } }
          - { id: jf-info-ap2, sim: { latency_ms: 100, clients: 14 } }
`;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Retries `fn` until it stops throwing, or fails with its last error. */
export async function eventually(fn, timeout = 10000, what = '') {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      if (what && last) last.message = `${what}: ${last.message}`;
      throw last;
    }
    await sleep(150);
  }
}

/** Headless Chromium from `executablePath` (never a downloaded browser),
 *  with nothing reaching out to the network on its own. */
export function launchChromium(chromium, executablePath) {
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-proxy-server', '--disable-dev-shm-usage'],
  });
}

/** Test registration: `const { tests, test } = testList();`. */
export function testList() {
  const tests = [];
  return { tests, test: (name, fn) => tests.push({ name, fn }) };
}

/**
 * Runs `tests` in order (those whose name holds `filter`), each within
 * 90 s, a test failing too when `pageErrors` got any; prints one
 * `ok`/`not ok` line per test, screenshots every page of a failed test into
 * `artifacts`, and closes the browser `contexts` after each test.
 * Resolves to {passed, failed}.
 */
export async function runTests(tests, { filter, artifacts, contexts, pageErrors }) {
  let passed = 0;
  let failed = 0;
  for (const [i, t] of tests.entries()) {
    if (filter && !t.name.includes(filter)) continue;
    const started = Date.now();
    pageErrors.length = 0;
    try {
      await Promise.race([t.fn(), sleep(90000).then(() => { throw new Error('timed out after 90 s'); })]);
      assert.deepEqual(pageErrors, [], 'errors in the pages');
      passed += 1;
      console.log(`ok ${i + 1} - ${t.name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed += 1;
      console.log(`not ok ${i + 1} - ${t.name}\n  ${String(e.stack || e).split('\n').join('\n  ')}`);
      for (const [j, ctx] of contexts.entries()) {
        for (const [k, p] of ctx.pages().entries()) {
          await p.screenshot({ path: path.join(artifacts, `failed-${i + 1}-${j}-${k}.png`), fullPage: true }).catch(() => {});
        }
      }
    }
    while (contexts.length) await contexts.pop().close().catch(() => {});
  }
  return { passed, failed };
}
