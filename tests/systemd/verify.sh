#!/usr/bin/env bash
# Checks systemd/borne.service without a running systemd (CI containers):
#   1. `systemd-analyze verify` on a copy whose /usr/bin/borne points to the
#      built binary (verify insists that ExecStart binaries exist), alone and
#      with the credentials drop-in (systemd/credentials.conf); any warning
#      fails;
#   2. the binary accepts the unit's command lines (`check`, `run
#      --log-format json`): a renamed flag would otherwise only show at boot;
#   3. `systemd-analyze security --offline=yes`: exposure at most 2.0 ("OK").
#
# Run it after `cargo build` (or set BORNE_BIN to a borne binary):
#   bash tests/systemd/verify.sh
# Exits non-zero on any failure; prints the exposure line.
set -euo pipefail
cd "$(dirname "$0")/../.."

unit=systemd/borne.service
dropin=systemd/credentials.conf
# Exposure, in tenths, above which this fails (20 = 2.0, the top of "OK").
threshold=20

fail() {
  echo "verify.sh: $*" >&2
  exit 1
}

command -v systemd-analyze >/dev/null 2>&1 || fail "systemd-analyze not found (apt-get install systemd)"
[ -f "$unit" ] || fail "$unit not found"

bin=${BORNE_BIN:-}
if [ -z "$bin" ]; then
  target_dir=${CARGO_TARGET_DIR:-target}
  for candidate in "$target_dir/debug/borne" "$target_dir/release/borne"; do
    if [ -x "$candidate" ]; then
      bin=$candidate
      break
    fi
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || fail "no borne binary: run \`cargo build\` first (or set BORNE_BIN)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

# A path without spaces whatever the checkout's path is.
mkdir -p "$work/bin" "$work/with-dropin/borne.service.d" "$work/alone"
ln -s "$bin" "$work/bin/borne"
sed "s#/usr/bin/borne#$work/bin/borne#g" "$unit" >"$work/alone/borne.service"
cp "$work/alone/borne.service" "$work/with-dropin/borne.service"
cp "$dropin" "$work/with-dropin/borne.service.d/credentials.conf"
grep -q "$work/bin/borne check" "$work/alone/borne.service" || fail "the unit no longer runs /usr/bin/borne check"

for variant in alone with-dropin; do
  # verify exits 0 on unknown keys and bad values: any output is a failure.
  if ! out=$(systemd-analyze verify --man=no "$work/$variant/borne.service" 2>&1) || [ -n "$out" ]; then
    echo "$out" >&2
    fail "systemd-analyze verify failed ($variant)"
  fi
  echo "systemd-analyze verify: ok ($variant)"
done

# The unit's command lines, as the binary parses them: a usage error (clap
# exits 2) means the unit and the CLI disagree; exit 1 (the configuration
# cannot be read) is what a missing file gives.
missing="$work/no-such-config.yaml"
for args in "check --config $missing" "run --config $missing --log-format json"; do
  set +e
  # shellcheck disable=SC2086 # word splitting wanted
  "$bin" $args >/dev/null 2>"$work/stderr"
  rc=$?
  set -e
  if [ "$rc" != 1 ]; then
    cat "$work/stderr" >&2
    fail "\`borne $args\` exited $rc, expected 1 (configuration unreadable)"
  fi
done
echo "command lines accepted by $bin"

# Every directive the deployment relies on.
for directive in Type=notify NotifyAccess=main WatchdogSec= TimeoutStopSec= \
  ExecReload=/bin/kill StateDirectory=borne ConfigurationDirectory=borne User=borne; do
  grep -q "^$directive" "$unit" || fail "$unit lacks $directive"
done
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\?$/\1/p' "$unit")
[ -n "$stop" ] && [ "$stop" -gt 15 ] ||
  fail "TimeoutStopSec must leave room for the 10 s shutdown grace and the final flush"

# The package's pieces (building the .deb itself is left out: a release
# build): the postinst parses, carries cargo-deb's token once on a line of
# its own (cargo-deb replaces it wherever it appears, comments included), and
# every file [package.metadata.deb] ships exists.
postinst=systemd/debian/postinst
sh -n "$postinst" || fail "$postinst: shell syntax error"
[ "$(grep -c '#DEBHELPER#' "$postinst")" = 1 ] && grep -qx '#DEBHELPER#' "$postinst" ||
  fail "$postinst must hold #DEBHELPER# exactly once, alone on its line"
assets=$(sed -n '/^\[package\.metadata\.deb\]/,/^\[/s/^ *\["\([^"]*\)".*/\1/p' Cargo.toml)
[ -n "$assets" ] || fail "no assets in [package.metadata.deb] of Cargo.toml"
for asset in $assets; do
  case $asset in
  target/*) ;; # built by cargo deb
  *) compgen -G "$asset" >/dev/null || fail "Cargo.toml [package.metadata.deb] ships $asset, which does not exist" ;;
  esac
done
echo "package metadata and postinst: ok"

# --offline exists since systemd 250 (Debian 12 has 252).
security=$(systemd-analyze security --offline=yes "$work/alone/borne.service" 2>&1) || {
  echo "$security" >&2
  fail "systemd-analyze security failed"
}
line=$(grep 'Overall exposure level' <<<"$security") || fail "no exposure line in: $security"
echo "$line"
systemd-analyze security --offline=yes --threshold="$threshold" "$work/alone/borne.service" >/dev/null 2>&1 ||
  fail "exposure above $((threshold / 10)).$((threshold % 10)): tighten the sandbox (see the ✗ lines above)"
echo "tests/systemd/verify.sh: ok"
