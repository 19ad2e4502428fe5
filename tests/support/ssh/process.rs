//! The process model of a real AP for the fake OpenWrt: what runs in the
//! background, what a reboot does.
//!
//! - Commands run with `TMPDIR=<root>/tmp` (see `fake-openwrt/login` and
//!   [`FakeOpenWrt::shell`]): the AP's `/tmp`, a tmpfs on OpenWrt, private
//!   to each fake. borne's lease sleeper lives there.
//! - Background processes started from a session (busybox/Debian
//!   `start-stop-daemon -b`) survive the SSH session, as on an AP: they are
//!   in a session of their own.
//! - [`FakeOpenWrt::reboot`] is a power cycle: every background process of
//!   the fake is killed, `/tmp` is emptied, and the running state of every
//!   radio becomes what the saved (committed) configuration says.
//! - Dropping the fake kills its background processes too, so that no
//!   test leaves a sleeper behind.

use std::path::PathBuf;
use std::process::Command;

use super::FakeOpenWrt;

impl FakeOpenWrt {
    /// The fake's `/tmp` (`TMPDIR` of its sessions).
    pub fn tmp_dir(&self) -> PathBuf {
        self.bin_dir().parent().expect("fake root").join("tmp")
    }

    /// The pid of borne's lease sleeper, while it runs.
    pub fn lease_sleeper(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.tmp_dir().join("borne-lease/pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// The lease deadline the sleeper waits for, in `/proc/uptime` seconds.
    pub fn lease_deadline(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.tmp_dir().join("borne-lease/deadline")).ok()?;
        text.trim().parse().ok()
    }

    /// Every radio running, and "off" in the saved configuration: an AP
    /// that borne switched on with a lease (issue 14).
    pub fn on_with_saved_off(&self) -> bool {
        self.radios().iter().all(|r| {
            let s = self.state(r);
            s.running_on && !s.committed_on
        })
    }

    /// Kills every background process of the fake (by process group).
    pub fn kill_background(&self) {
        if let Some(pid) = self.lease_sleeper() {
            let group = process_group(pid).unwrap_or(pid);
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }

    /// A power cycle: background processes die, `/tmp` is emptied, and
    /// radios come up as the saved configuration says.
    pub fn reboot(&self) {
        self.kill_background();
        let _ = std::fs::remove_dir_all(self.tmp_dir());
        let _ = std::fs::create_dir_all(self.tmp_dir());
        for radio in self.radios() {
            let committed = self.state_dir().join("committed").join(&radio);
            let running = self.state_dir().join("running").join(&radio);
            std::fs::copy(&committed, &running).expect("copy committed to running");
        }
    }
}

impl Drop for FakeOpenWrt {
    fn drop(&mut self) {
        self.kill_background();
    }
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// Field 5 of `/proc/<pid>/stat`.
fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(2)?.parse().ok()
}
