//! The device-side lease on OpenWrt access points: what borne runs so that
//! radios it switched on go off by themselves if borne stops renewing.
//!
//! Pure, like `commands.rs`: command strings only. Every line is explained
//! in `docs/access-points.md` ("OpenWrt: the lease").
//!
//! How it works, with nothing installed by hand and nothing persistent on
//! the AP but a saved "off":
//! - **The sleeper** is a small `sh` script that borne writes to
//!   `$TMPDIR/borne-lease/sleeper` (`/tmp`, a tmpfs, on OpenWrt) at every
//!   arming, and starts detached with busybox `start-stop-daemon -b` when it
//!   is not already running. It loops: reads `/proc/uptime` (monotonic
//!   seconds since boot; the wall clock of an AP may be unset), compares it
//!   with the deadline in `deadline`, sleeps at most 5 s, and once the
//!   deadline has passed (or the file is gone or garbled: the safe
//!   reading), switches the radios off and exits.
//! - **Arming and renewing** are the same command: write a new deadline
//!   (now + lease, by `/proc/uptime`) with an atomic `mv`, and start the
//!   sleeper if its pid is not alive. A renewal is one tiny exec; nothing
//!   is killed, so there is no window without a sleeper.
//! - **The saved configuration stays "off"** while the radios run: the
//!   "on" commits `disabled=0`, runs `wifi reload` (netifd reads the
//!   configuration while handling it) and commits `disabled=1` right after.
//!   A reboot, a power cut or any later `wifi reload` therefore brings the
//!   radios up off. The window between the two commits is the duration of
//!   `wifi reload`'s configuration read (well under a second).

use std::time::Duration;

use super::commands::quote;
use crate::config::lease_seconds;
use crate::driver::DriverError;

/// The lease directory on the AP. `TMPDIR` is unset on OpenWrt, so this is
/// `/tmp/borne-lease` there (tmpfs: gone at reboot, as it should be); the
/// test fakes set `TMPDIR` so that each fake AP has its own.
const DIR: &str = "${TMPDIR:-/tmp}/borne-lease";

/// Longest single `sleep` of the sleeper: how late after its deadline the
/// sleeper may notice it, and how soon it notices a deadline moved earlier.
const SLEEP_STEP_SECONDS: u32 = 5;

/// The sleeper script, one line per argument of `printf '%s\n'`. No line
/// contains a single quote, so each is quoted with single quotes as is.
fn sleeper_lines(off: &str) -> Vec<String> {
    vec![
        "# borne lease sleeper: radios off once /proc/uptime passes ./deadline".to_owned(),
        "d=${0%/*}".to_owned(),
        "while :; do".to_owned(),
        "  read -r now _ < /proc/uptime; now=${now%%.*}".to_owned(),
        "  end=$(cat \"$d/deadline\" 2>/dev/null)".to_owned(),
        "  case $end in \"\"|*[!0-9]*) break ;; esac".to_owned(),
        "  [ \"$now\" -ge \"$end\" ] && break".to_owned(),
        format!("  left=$((end - now)); [ \"$left\" -gt {SLEEP_STEP_SECONDS} ] && left={SLEEP_STEP_SECONDS}"),
        "  sleep \"$left\"".to_owned(),
        "done".to_owned(),
        "rm -f \"$d/pid\" \"$d/deadline\"".to_owned(),
        off.to_owned(),
    ]
}

/// The radios-off command the sleeper runs at expiry: the saved
/// configuration is already "off" (see the module docs), the `uci set`s
/// make sure of it, and `wifi reload` applies it.
fn off_command(radios: &[String]) -> Result<String, DriverError> {
    let mut parts = Vec::with_capacity(radios.len() + 2);
    for radio in radios {
        parts.push(format!("uci set wireless.{}.disabled=1", quote(radio)?));
    }
    parts.push("uci commit wireless".to_owned());
    parts.push("wifi reload".to_owned());
    Ok(parts.join("; "))
}

/// Arms or renews the lease: (re)writes the sleeper, moves the deadline to
/// now + `lease` by the AP's monotonic clock, and starts the sleeper
/// unless it runs. Exits non-zero, before anything is switched, when a
/// step fails.
///
/// # Errors
/// [`DriverError::Setup`] when `radios` is empty or a name cannot be quoted.
pub(super) fn openwrt_arm(radios: &[String], lease: Duration) -> Result<String, DriverError> {
    if radios.is_empty() {
        return Err(DriverError::Setup("no radio to switch".to_owned()));
    }
    let off = off_command(radios)?;
    let lines = sleeper_lines(&off)
        .iter()
        .map(|l| quote(l))
        .collect::<Result<Vec<_>, _>>()?;
    let seconds = lease_seconds(lease);
    Ok([
        format!("d={DIR}"),
        "mkdir -p \"$d\" || exit 1".to_owned(),
        format!("printf '%s\\n' {} > \"$d/sleeper.new\" || exit 1", lines.join(" ")),
        "mv \"$d/sleeper.new\" \"$d/sleeper\" || exit 1".to_owned(),
        "read -r now _ < /proc/uptime || exit 1".to_owned(),
        "now=${now%%.*}".to_owned(),
        format!("echo $((now + {seconds})) > \"$d/deadline.new\" || exit 1"),
        "mv \"$d/deadline.new\" \"$d/deadline\" || exit 1".to_owned(),
        "if ! { [ -s \"$d/pid\" ] && kill -0 \"$(cat \"$d/pid\")\" 2>/dev/null; }; then \
         rm -f \"$d/pid\"; start-stop-daemon -S -b -m -p \"$d/pid\" -x /bin/sh -- \"$d/sleeper\" || exit 1; fi"
            .to_owned(),
    ]
    .join("; "))
}

/// Switches on with a lease: arms it first (an "on" that reached the radios
/// always ends by itself), commits `disabled=0`, reloads, and commits
/// `disabled=1` again whatever the reload did, so that the saved
/// configuration says "off". Exits with the status of the first failing
/// step.
///
/// # Errors
/// As [`openwrt_arm`].
pub(super) fn openwrt_on_with_lease(radios: &[String], lease: Duration) -> Result<String, DriverError> {
    let arm = openwrt_arm(radios, lease)?;
    let mut on = Vec::with_capacity(radios.len() + 2);
    let mut saved_off = Vec::with_capacity(radios.len() + 1);
    for radio in radios {
        let r = quote(radio)?;
        on.push(format!("uci set wireless.{r}.disabled=0"));
        saved_off.push(format!("uci set wireless.{r}.disabled=1"));
    }
    on.push("uci commit wireless".to_owned());
    on.push("wifi reload".to_owned());
    saved_off.push("uci commit wireless".to_owned());
    Ok(format!(
        "{arm}; {}; s=$?; {} || exit 1; exit $s",
        on.join(" && "),
        saved_off.join(" && ")
    ))
}

/// The custom preset's `lease_command` with `{seconds}` replaced.
pub(super) fn custom_lease(template: &str, lease: Duration) -> String {
    template.replace("{seconds}", &lease_seconds(lease).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radios(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Runs `script` with /bin/sh in a scratch `TMPDIR` and a PATH where
    /// `uci`, `wifi` and `start-stop-daemon` only log their arguments.
    fn run(script: &str) -> (i32, String, tempfile::TempDir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        for tool in ["uci", "wifi", "start-stop-daemon"] {
            let path = bin.join(tool);
            std::fs::write(&path, format!("#!/bin/sh\necho {tool} \"$@\" >> \"$TMPDIR/log\"\n")).expect("write");
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env("TMPDIR", tmp.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .expect("sh");
        let log = std::fs::read_to_string(tmp.path().join("log")).unwrap_or_default();
        (out.status.code().unwrap_or(-1), log, tmp)
    }

    #[test]
    fn arming_writes_the_sleeper_and_a_monotonic_deadline_and_starts_it() {
        let (status, log, tmp) = run(&openwrt_arm(&radios(&["radio0"]), Duration::from_secs(1200)).unwrap());
        assert_eq!(status, 0, "{log}");
        let d = tmp.path().join("borne-lease");
        let deadline: u64 = std::fs::read_to_string(d.join("deadline"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (deadline as f64 - uptime - 1200.0).abs() < 5.0,
            "deadline {deadline}, uptime {uptime}"
        );
        let sleeper = std::fs::read_to_string(d.join("sleeper")).unwrap();
        assert!(sleeper.contains("/proc/uptime"), "{sleeper}");
        assert!(
            sleeper.ends_with("uci set wireless.radio0.disabled=1; uci commit wireless; wifi reload\n"),
            "{sleeper}"
        );
        assert!(log.contains("start-stop-daemon -S -b -m -p"), "{log}");
        assert!(!log.contains("uci"), "arming switches nothing: {log}");
    }

    #[test]
    fn the_sleeper_switches_off_at_once_when_the_deadline_is_past_or_garbled() {
        let arm = openwrt_arm(&radios(&["radio0", "radio1"]), Duration::from_secs(60)).unwrap();
        let script = format!(
            "{arm}; d=$TMPDIR/borne-lease; echo 5 > \"$d/deadline\"; sh \"$d/sleeper\"; echo x > \"$d/deadline\"; sh \"$d/sleeper\""
        );
        let (status, log, _tmp) = run(&script);
        assert_eq!(status, 0, "{log}");
        assert_eq!(log.matches("wifi reload").count(), 2, "{log}");
        assert!(log.contains("uci set wireless.radio1.disabled=1"), "{log}");
    }

    #[test]
    fn switching_on_commits_off_again_after_the_reload() {
        let (status, log, _tmp) = run(&openwrt_on_with_lease(&radios(&["radio0"]), Duration::from_secs(60)).unwrap());
        assert_eq!(status, 0, "{log}");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(
            &lines[1..],
            [
                "uci set wireless.radio0.disabled=0",
                "uci commit wireless",
                "wifi reload",
                "uci set wireless.radio0.disabled=1",
                "uci commit wireless"
            ],
            "{log}"
        );
        assert!(
            lines[0].starts_with("start-stop-daemon"),
            "the lease is armed first: {log}"
        );
    }

    #[test]
    fn hostile_radio_names_are_quoted_and_empty_radio_lists_refused() {
        let cmd = openwrt_on_with_lease(&radios(&["a;reboot"]), Duration::from_secs(60)).unwrap();
        assert!(cmd.contains("wireless.'a;reboot'.disabled=0"), "{cmd}");
        assert!(openwrt_arm(&[], Duration::from_secs(60)).is_err());
    }

    #[test]
    fn custom_lease_command_gets_the_seconds() {
        assert_eq!(custom_lease("lease {seconds}", Duration::from_secs(1200)), "lease 1200");
    }
}
