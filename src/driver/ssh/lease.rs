//! The device-side lease on OpenWrt access points: what borne runs so that
//! radios it switched on go off by themselves if borne stops renewing.
//!
//! Pure, like `commands.rs`: command strings only. Every line is explained
//! in `docs/access-points.md` ("OpenWrt: the lease").
//!
//! How it works, with nothing installed by hand and nothing persistent on
//! the AP but a saved "off":
//! - **The sleeper** is a small `sh` script that borne writes to
//!   `$TMPDIR/borne-lease/sleeper-<hash of its text>` (`/tmp`, a tmpfs, on
//!   OpenWrt) when it is not there yet, and starts detached with busybox
//!   `start-stop-daemon -b` when it is not already running. It loops: reads `/proc/uptime` (monotonic
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

/// The sleeper's file name: `sleeper-` and 12 hex digits of its text's
/// SHA-256, so that an arming finds the script already on the AP (the
/// usual case: same radios) by name alone and writes nothing.
fn sleeper_name(lines: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(lines.join("\n").as_bytes());
    format!("sleeper-{}", &hex::encode(digest)[..12])
}

/// Arms or renews the lease: writes the sleeper unless it is there already,
/// moves the deadline to now + `lease` by the AP's monotonic clock, and
/// starts the sleeper unless it runs. Exits non-zero, before anything is
/// switched, when a step fails.
///
/// Every "on" runs this, so it costs one process (the `mv` that makes the
/// deadline atomic) when the sleeper runs already: the directory, the
/// script and the pid are tested and read with shell builtins. Each
/// process is a fork on the AP's small CPU, and 50 APs switched at once
/// on the test fakes made them the difference between "on" and "off"
/// (docs/benchmarks.md, "SSH fan-out").
///
/// # Errors
/// [`DriverError::Setup`] when `radios` is empty or a name cannot be quoted.
pub(super) fn openwrt_arm(radios: &[String], lease: Duration) -> Result<String, DriverError> {
    if radios.is_empty() {
        return Err(DriverError::Setup("no radio to switch".to_owned()));
    }
    let off = off_command(radios)?;
    let script = sleeper_lines(&off);
    let name = sleeper_name(&script);
    let lines = script.iter().map(|l| quote(l)).collect::<Result<Vec<_>, _>>()?;
    let seconds = lease_seconds(lease);
    Ok([
        format!("d={DIR}"),
        "[ -d \"$d\" ] || mkdir -p \"$d\" || exit 1".to_owned(),
        format!("s=\"$d/{name}\""),
        // Another text (other radios) gets another name: the old files go.
        format!(
            "[ -s \"$s\" ] || {{ rm -f \"$d\"/sleeper-*; printf '%s\\n' {} > \"$d/sleeper.new\" && mv \"$d/sleeper.new\" \"$s\"; }} || exit 1",
            lines.join(" ")
        ),
        "read -r now _ < /proc/uptime || exit 1".to_owned(),
        "now=${now%%.*}".to_owned(),
        format!("echo $((now + {seconds})) > \"$d/deadline.new\" || exit 1"),
        "mv \"$d/deadline.new\" \"$d/deadline\" || exit 1".to_owned(),
        "p=; [ -s \"$d/pid\" ] && read -r p < \"$d/pid\"".to_owned(),
        "if ! { [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; }; then \
         rm -f \"$d/pid\"; start-stop-daemon -S -b -m -p \"$d/pid\" -x /bin/sh -- \"$s\" || exit 1; fi"
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
        let (status, log) = run_in(&tmp, script, &[]);
        (status, log, tmp)
    }

    /// As [`run`], in `tmp` (kept from an earlier run), where the tools
    /// `traced` also log their arguments, then run as usual.
    fn run_in(tmp: &tempfile::TempDir, script: &str, traced: &[&str]) -> (i32, String) {
        use std::os::unix::fs::PermissionsExt as _;
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        let log_path = tmp.path().join("log");
        let _ = std::fs::remove_file(&log_path);
        let tools = ["uci", "wifi", "start-stop-daemon"].iter().map(|t| (*t, false));
        for (tool, real) in tools.chain(traced.iter().map(|t| (*t, true))) {
            let path = bin.join(tool);
            let mut text = format!("#!/bin/sh\necho {tool} \"$@\" >> \"$TMPDIR/log\"\n");
            if real {
                text.push_str(&format!("PATH=/usr/bin:/bin exec {tool} \"$@\"\n"));
            }
            std::fs::write(&path, text).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env("TMPDIR", tmp.path())
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .expect("sh");
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        (out.status.code().unwrap_or(-1), log)
    }

    /// The one sleeper script in the lease directory `d`.
    fn sleeper(d: &std::path::Path) -> std::path::PathBuf {
        let found: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("sleeper-"))
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
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
        let sleeper = std::fs::read_to_string(sleeper(&d)).unwrap();
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
            "{arm}; d=$TMPDIR/borne-lease; echo 5 > \"$d/deadline\"; sh \"$d\"/sleeper-*; echo x > \"$d/deadline\"; sh \"$d\"/sleeper-*"
        );
        let (status, log, _tmp) = run(&script);
        assert_eq!(status, 0, "{log}");
        assert_eq!(log.matches("wifi reload").count(), 2, "{log}");
        assert!(log.contains("uci set wireless.radio1.disabled=1"), "{log}");
    }

    /// What every "on" pays while the sleeper runs: one process, the `mv`
    /// of the new deadline; the script is not written again.
    #[test]
    fn rearming_a_running_lease_starts_one_process_and_keeps_the_script() {
        let arm = openwrt_arm(&radios(&["radio0", "radio1"]), Duration::from_secs(1200)).unwrap();
        let tmp = tempfile::tempdir().expect("tempdir");
        let traced = ["mkdir", "mv", "rm", "cat"];
        let (status, first) = run_in(&tmp, &arm, &traced);
        assert_eq!(status, 0, "{first}");
        assert!(first.contains("start-stop-daemon"), "{first}");
        let d = tmp.path().join("borne-lease");
        let script = sleeper(&d);
        // The sleeper runs: a live pid (this test's) in its pid file.
        std::fs::write(d.join("pid"), format!("{}\n", std::process::id())).unwrap();
        std::fs::write(d.join("deadline"), "1\n").unwrap();
        let (status, again) = run_in(&tmp, &arm, &traced);
        assert_eq!(status, 0, "{again}");
        assert_eq!(again.lines().count(), 1, "{again}");
        assert!(again.starts_with("mv ") && again.contains("deadline.new"), "{again}");
        assert_eq!(sleeper(&d), script);
        let deadline: u64 = std::fs::read_to_string(d.join("deadline"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(deadline > 1200, "the deadline moved: {deadline}");
        // Other radios, another script: the old one goes, the new one runs.
        let other = openwrt_arm(&radios(&["radio0"]), Duration::from_secs(1200)).unwrap();
        std::fs::remove_file(d.join("pid")).unwrap();
        let (status, log) = run_in(&tmp, &other, &traced);
        assert_eq!(status, 0, "{log}");
        let new_script = sleeper(&d);
        assert_ne!(new_script, script);
        assert!(log.contains(&format!("-- {}", new_script.display())), "{log}");
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
