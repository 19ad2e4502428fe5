#!/usr/bin/env bash
# End-to-end tests of the teacher page and the IT dashboard in headless
# Chromium against the real daemon. One entry point for developers and CI:
#
#   tests/browser/run.sh [substring-of-a-test-name]
#
# Needs: Node.js >= 20 with npm, and Debian's chromium (apt-get install
# chromium chromium-driver; /usr/bin/chromium, or set CHROMIUM). Installs
# playwright-core from package-lock.json (npm ci; it never downloads a
# browser), builds target/debug/borne unless BORNE_BIN is set, and runs
# run.mjs then sso.mjs (single sign-on against tests/oidc's provider), each
# ending with "N passed, M failed". Exits non-zero on failure.
# Screenshots: tests/artifacts/browser/; UPDATE_SCREENSHOTS=1 also refreshes
# docs/screenshots/{teacher,admin}.png.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

fail() {
  echo "error: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

command -v node >/dev/null 2>&1 || fail "node is not installed"
command -v npm >/dev/null 2>&1 || fail "npm is not installed"
chromium="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$chromium" ] || fail "$chromium not found: apt-get install -y chromium chromium-driver (or set CHROMIUM)"
export CHROMIUM="$chromium"

if [ -z "${BORNE_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet --bin borne) || fail "cargo build failed"
  export BORNE_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/borne"
fi

cd "$here"
# Reinstall only when package-lock.json changed since the last install.
if ! cmp -s package-lock.json node_modules/.installed-lock.json; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error || fail "npm ci failed"
  cp package-lock.json node_modules/.installed-lock.json
fi

# The OpenID provider of the single sign-on suite (sso.mjs), from its own lock file.
if ! cmp -s "$root/tests/oidc/package-lock.json" "$root/tests/oidc/node_modules/.installed-lock.json"; then
  (cd "$root/tests/oidc" && npm ci --no-audit --no-fund --loglevel=error \
    && cp package-lock.json node_modules/.installed-lock.json) || fail "npm ci in tests/oidc failed"
fi

status=0
node run.mjs "$@" || status=$?
node sso.mjs "$@" || status=$?
exit "$status"
