//! The test user's login rc files, hidden from the fakes' sessions.
//!
//! sshd runs every command as `<login shell> -c`, and bash started by sshd
//! reads `/etc/bash.bashrc` and `~/.bashrc` even when not interactive. On
//! a developer machine those can cost a lot per command (root's
//! `pyenv init`: 0.3 s and a lock that serializes concurrent sessions) and
//! print to stderr; an OpenWrt AP's `ash` reads nothing. When the tests run
//! as root, each sshd therefore runs in a private mount namespace where
//! those files are an empty file (`unshare --mount`, `mount --bind
//! /dev/null`), visible to that sshd and its sessions only.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The rc files to hide, or nothing when that is not needed (no bash, or
/// empty files) or not possible (not root, no `unshare`, a container that
/// forbids the namespace); decided once per process, with a note on stderr
/// when they cannot be hidden.
pub fn to_hide() -> &'static [String] {
    static HIDE: OnceLock<Vec<String>> = OnceLock::new();
    HIDE.get_or_init(|| {
        let rc = login_rc_files(&super::current_user());
        if rc.is_empty() {
            return rc;
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        // A dry run: a container may forbid the namespace or the mount.
        let works = root
            && Path::new(UNSHARE).is_file()
            && Command::new(UNSHARE)
                .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg(hide_then(&rc, "true"))
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if works {
            rc
        } else {
            eprintln!(
                "note: the fakes' commands run through {} (not root or no unshare): slower sessions",
                rc.join(", ")
            );
            Vec::new()
        }
    })
}

const UNSHARE: &str = "/usr/bin/unshare";

/// `program args…` as it must be spawned so that it does not see the rc
/// files: as is when there is nothing to hide, else through `unshare` and
/// a shell that bind-mounts an empty file over each, then `exec`s it (the
/// child's PID is the program's).
pub fn command(program: &str, args: &[&str]) -> Command {
    let rc = to_hide();
    if rc.is_empty() {
        let mut c = Command::new(program);
        c.args(args);
        return c;
    }
    let mut exec = format!("exec {}", shlex::try_quote(program).expect("path without NUL"));
    for a in args {
        exec.push(' ');
        exec.push_str(&shlex::try_quote(a).expect("argument without NUL"));
    }
    let mut c = Command::new(UNSHARE);
    c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(hide_then(rc, &exec));
    c
}

/// The rc files bash reads for a command run over SSH for `user`, when
/// the login shell is bash and they are not empty.
fn login_rc_files(user: &str) -> Vec<String> {
    let out = Command::new("getent").args(["passwd", user]).output();
    let line = out
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let fields: Vec<&str> = line.split(':').collect();
    let (Some(home), Some(shell)) = (fields.get(5), fields.get(6)) else {
        return Vec::new();
    };
    if !shell.ends_with("/bash") {
        return Vec::new();
    }
    [format!("{home}/.bashrc"), "/etc/bash.bashrc".to_owned()]
        .into_iter()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .collect()
}

/// A shell script that hides `rc` (an empty file bind-mounted over each)
/// then runs `then`.
fn hide_then(rc: &[String], then: &str) -> String {
    let mut script = String::from("set -e; ");
    for f in rc {
        script.push_str(&format!(
            "mount --bind /dev/null {}; ",
            shlex::try_quote(f).expect("path without NUL")
        ));
    }
    script.push_str(then);
    script
}
