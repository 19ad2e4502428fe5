//! One SSH connection to an AP, in blocking ssh2 calls.
//!
//! Everything here blocks and must run on Tokio's blocking pool. Every
//! blocking libssh2 call runs under `Session::set_timeout` set to what is
//! left of the limit of its phase (connect, command), so a hung AP cannot
//! hold a thread longer than that; the async side adds an outer
//! `tokio::time::timeout` in case libssh2 itself misbehaves.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use ssh2::{CheckResult, ErrorCode, HostKeyType, KnownHostFileKind, MethodType, Session};

use super::commands::{MAX_STDERR, MAX_STDOUT};
use crate::config::{HostKeyCheck, SshAp, SshAuth};
use crate::driver::DriverError;

/// libssh2's `LIBSSH2_ERROR_TIMEOUT`: a blocking call ran past `set_timeout`.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;

/// Host key algorithms in OpenSSH's order of preference, so that borne
/// negotiates the same key type as `ssh` and `ssh-keyscan` users see first
/// (libssh2's own order puts ECDSA first, which would fail against a
/// `known_hosts` holding only the Ed25519 key of a Dropbear AP).
const HOSTKEY_PREFS: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
                             ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

/// `user@host:port`, as errors name an AP.
pub(super) fn target(ssh: &SshAp) -> String {
    if ssh.host.contains(':') {
        format!("{}@[{}]:{}", ssh.user, ssh.host, ssh.port)
    } else {
        format!("{}@{}:{}", ssh.user, ssh.host, ssh.port)
    }
}

/// What a command did.
#[derive(Debug)]
pub(super) struct Output {
    /// Exit status (`-1` when killed by a signal).
    pub status: i32,
    /// Stdout, lossily decoded.
    pub stdout: String,
    /// Stderr, lossily decoded, at most [`MAX_STDERR`] bytes.
    pub stderr: String,
}

/// Why an exec failed.
#[derive(Debug)]
pub(super) enum ExecError {
    /// The channel could not be opened or the command not started: the
    /// connection is dead. Nothing ran, so a retry on a new connection is safe.
    NotStarted(String),
    /// The command may have run; the connection is not to be reused.
    Failed(DriverError),
}

/// An authenticated SSH session to one AP.
pub(super) struct Conn {
    session: Session,
    /// Taken from the pool rather than opened for this operation.
    pub reused: bool,
}

/// The rest of `deadline` in libssh2's milliseconds, at least 1 (0 would
/// mean "no timeout").
fn millis_left(deadline: Instant) -> u32 {
    let left = deadline.saturating_duration_since(Instant::now()).as_millis();
    u32::try_from(left).unwrap_or(u32::MAX).max(1)
}

fn is_timeout(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT)
}

/// Reads a whole file holding one secret, trimmed.
fn read_secret(what: &str, path: &Path, doing: &str) -> Result<String, DriverError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DriverError::Setup(format!("cannot read {what} {} ({e}) while {doing}", path.display())))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(DriverError::Setup(format!(
            "{what} {} is empty while {doing}",
            path.display()
        )));
    }
    Ok(secret.to_owned())
}

/// The OpenSSH name of a host key type.
fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// `SHA256:<base64 without padding>` of a raw host key, as `ssh-keygen -l` prints it.
pub(super) fn fingerprint(key: &[u8]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(key))
    )
}

/// Whether `seen` is the fingerprint `expected` from the configuration
/// (which may carry base64 padding some tools print).
fn same_fingerprint(expected: &str, seen: &str) -> bool {
    expected.trim().trim_end_matches('=') == seen
}

/// The `known_hosts` lines libssh2 can read, with `@revoked` keys apart.
///
/// libssh2 stops at the first line it cannot parse (a `@cert-authority`
/// marker, a security-key type), which would make one odd line disable
/// every AP; lines are fed one by one instead and odd ones skipped.
/// `@revoked` lines name keys that must be refused even when another line
/// lists them.
fn known_hosts_lines(text: &str) -> (Vec<&str>, Vec<&str>) {
    let mut lines = Vec::new();
    let mut revoked = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@revoked") {
            // `@revoked hosts type base64`: keep the base64 key.
            if let Some(key) = rest.split_whitespace().nth(2) {
                revoked.push(key);
            }
        } else if !line.starts_with('@') {
            lines.push(line);
        }
    }
    (lines, revoked)
}

/// Verifies the server's host key as configured. Runs before
/// authentication, so that no password or signature goes to an impostor,
/// and therefore before any command.
fn check_host_key(session: &Session, ssh: &SshAp, doing: &str) -> Result<(), DriverError> {
    let who = format!("{}:{}", ssh.host, ssh.port);
    let (key, key_type) = session
        .host_key()
        .ok_or_else(|| DriverError::Protocol(format!("{who} sent no host key while {doing}")))?;
    let kind = key_type_name(key_type);
    let seen = fingerprint(key);
    match &ssh.host_key {
        HostKeyCheck::Insecure => {
            tracing::warn!(
                host = %who,
                key = %format!("{kind} {seen}"),
                "host key NOT verified (insecure_ignore_host_key): anyone on the network path could \
                 impersonate this AP; set known_hosts or host_key_sha256"
            );
            Ok(())
        }
        HostKeyCheck::Fingerprint(expected) => {
            if same_fingerprint(expected, &seen) {
                Ok(())
            } else {
                Err(DriverError::HostKey(format!(
                    "{who} presents the {kind} key {seen}, not {} (host_key_sha256): the AP was not \
                     switched. If its key was regenerated (reset, reflash), check the fingerprint on \
                     the AP itself and put it in host_key_sha256; otherwise someone may be \
                     intercepting the connection",
                    expected.trim()
                )))
            }
        }
        HostKeyCheck::KnownHosts(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                DriverError::Setup(format!(
                    "cannot read known_hosts {} ({e}) while {doing}",
                    path.display()
                ))
            })?;
            let (lines, revoked) = known_hosts_lines(&text);
            let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
            if revoked.contains(&key_b64.as_str()) {
                return Err(DriverError::HostKey(format!(
                    "{who} presents the {kind} key {seen}, marked @revoked in {}: the AP was not switched",
                    path.display()
                )));
            }
            let mut known = session
                .known_hosts()
                .map_err(|e| DriverError::Setup(format!("cannot check host keys ({}) while {doing}", e.message())))?;
            for (i, line) in lines.iter().enumerate() {
                if let Err(e) = known.read_str(line, KnownHostFileKind::OpenSSH) {
                    tracing::debug!(file = %path.display(), entry = i + 1, error = %e.message(), "known_hosts entry skipped");
                }
            }
            // libssh2 tries `[host]:port` first, then `host`, and matches
            // hashed (`|1|salt|hash`) entries as well as plain ones.
            match known.check_port(&ssh.host, ssh.port, key) {
                CheckResult::Match => Ok(()),
                CheckResult::Mismatch => Err(DriverError::HostKey(format!(
                    "the host key of {who} CHANGED: it presents the {kind} key {seen}, which is not the \
                     one in {file}: the AP was not switched. If the AP was reset or reflashed, check \
                     the fingerprint on the AP itself, then replace its entry: \
                     ssh-keygen -R '{entry}' -f {file} && ssh-keyscan -p {port} {host} >> {file}; \
                     otherwise someone may be intercepting the connection",
                    file = path.display(),
                    entry = known_hosts_name(ssh),
                    port = ssh.port,
                    host = ssh.host,
                ))),
                CheckResult::NotFound => Err(DriverError::HostKey(format!(
                    "{who} is not in {file}; it presents the {kind} key {seen}: the AP was not \
                     switched. Check that fingerprint on the AP itself, then add it: \
                     ssh-keyscan -p {port} {host} >> {file} (or set host_key_sha256: \"{seen}\")",
                    file = path.display(),
                    port = ssh.port,
                    host = ssh.host,
                ))),
                CheckResult::Failure => Err(DriverError::HostKey(format!(
                    "could not check the {kind} key {seen} of {who} against {}: the AP was not switched",
                    path.display()
                ))),
            }
        }
    }
}

/// How OpenSSH names this host in `known_hosts`.
fn known_hosts_name(ssh: &SshAp) -> String {
    if ssh.port == 22 {
        ssh.host.clone()
    } else {
        format!("[{}]:{}", ssh.host, ssh.port)
    }
}

fn authenticate(session: &Session, ssh: &SshAp, doing: &str) -> Result<(), DriverError> {
    let who = target(ssh);
    match &ssh.auth {
        SshAuth::Key {
            key_file,
            passphrase_file,
        } => {
            let passphrase = passphrase_file
                .as_deref()
                .map(|p| read_secret("passphrase_file", p, doing))
                .transpose()?;
            // libssh2 reports a missing file as a vague "unable to extract
            // public key"; say it plainly.
            std::fs::File::open(key_file).map_err(|e| {
                DriverError::Setup(format!(
                    "cannot read key_file {} ({e}) while {doing}",
                    key_file.display()
                ))
            })?;
            session
                .userauth_pubkey_file(&ssh.user, None, key_file, passphrase.as_deref())
                .map_err(|e| {
                    if is_timeout(&e) {
                        connect_timeout(ssh, doing, "authentication")
                    } else {
                        DriverError::AuthFailed(format!(
                            "{who} did not accept the key {} ({}) while {doing}",
                            key_file.display(),
                            e.message()
                        ))
                    }
                })?;
        }
        SshAuth::Password { password_file } => {
            let password = read_secret("password_file", password_file, doing)?;
            session.userauth_password(&ssh.user, &password).map_err(|e| {
                if is_timeout(&e) {
                    connect_timeout(ssh, doing, "authentication")
                } else {
                    DriverError::AuthFailed(format!(
                        "{who} did not accept the password from {} ({}) while {doing}",
                        password_file.display(),
                        e.message()
                    ))
                }
            })?;
        }
    }
    if session.authenticated() {
        Ok(())
    } else {
        Err(DriverError::AuthFailed(format!(
            "{who} did not authenticate borne while {doing}"
        )))
    }
}

fn connect_timeout(ssh: &SshAp, doing: &str, phase: &str) -> DriverError {
    DriverError::Timeout {
        seconds: ssh.connect_timeout.as_secs(),
        doing: format!("{doing} ({phase})"),
    }
}

impl Conn {
    /// Opens and authenticates a connection, checking the host key first:
    /// TCP connect, handshake and authentication share `connect_timeout`.
    pub(super) fn open(ssh: &SshAp, doing: &str) -> Result<Conn, DriverError> {
        let deadline = Instant::now() + ssh.connect_timeout;
        let who = target(ssh);
        let addrs: Vec<_> = (ssh.host.as_str(), ssh.port)
            .to_socket_addrs()
            .map_err(|e| DriverError::Unreachable(format!("cannot resolve {} ({e}) while {doing}", ssh.host)))?
            .collect();
        let mut tcp = None;
        let mut last_error = None;
        for addr in &addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match TcpStream::connect_timeout(addr, left) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last_error = Some((addr, e)),
            }
        }
        let tcp = match (tcp, last_error) {
            (Some(tcp), _) => tcp,
            (None, Some((_, e)))
                if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) =>
            {
                return Err(connect_timeout(ssh, doing, "TCP connect"));
            }
            (None, Some((addr, e))) => {
                return Err(DriverError::Unreachable(format!(
                    "cannot connect to {addr} ({e}) while {doing}"
                )));
            }
            (None, None) if addrs.is_empty() => {
                return Err(DriverError::Unreachable(format!(
                    "{} has no address while {doing}",
                    ssh.host
                )));
            }
            (None, None) => return Err(connect_timeout(ssh, doing, "TCP connect")),
        };
        // Commands are small request/response exchanges: do not let Nagle delay them.
        let _ = tcp.set_nodelay(true);

        let mut session = Session::new()
            .map_err(|e| DriverError::Setup(format!("cannot start an SSH session ({}) while {doing}", e.message())))?;
        session.set_timeout(millis_left(deadline));
        // Unknown names are dropped by libssh2; an error here only means
        // none is supported, and the handshake then says so.
        let _ = session.method_pref(MethodType::HostKey, HOSTKEY_PREFS);
        session.set_tcp_stream(tcp);
        session.handshake().map_err(|e| {
            if is_timeout(&e) {
                connect_timeout(ssh, doing, "SSH handshake")
            } else {
                DriverError::Unreachable(format!(
                    "SSH handshake with {who} failed ({}) while {doing}",
                    e.message()
                ))
            }
        })?;
        check_host_key(&session, ssh, doing)?;
        session.set_timeout(millis_left(deadline));
        authenticate(&session, ssh, doing)?;
        tracing::debug!(target = %who, "ssh connection opened");
        Ok(Conn { session, reused: false })
    }

    /// Runs one command: opening the channel and starting the command are
    /// bounded by `start_limit`, the command itself by `run_limit`.
    ///
    /// Stdout is read to its end, then stderr: libssh2 queues stderr
    /// meanwhile, up to the channel window (2 MiB), far above what a
    /// switch command prints; past it the command times out rather than
    /// hangs.
    pub(super) fn exec(
        &mut self,
        command: &str,
        start_limit: Duration,
        run_limit: Duration,
        doing: &str,
    ) -> Result<Output, ExecError> {
        let start_deadline = Instant::now() + start_limit;
        self.session.set_timeout(millis_left(start_deadline));
        let mut channel = self
            .session
            .channel_session()
            .map_err(|e| ExecError::NotStarted(format!("cannot open a channel ({})", e.message())))?;
        channel
            .exec(command)
            .map_err(|e| ExecError::NotStarted(format!("cannot start the command ({})", e.message())))?;

        let deadline = Instant::now() + run_limit;
        let timeout = || {
            ExecError::Failed(DriverError::Timeout {
                seconds: run_limit.as_secs(),
                doing: doing.to_owned(),
            })
        };
        let lost = |e: std::io::Error| {
            ExecError::Failed(DriverError::Unreachable(format!("connection lost ({e}) while {doing}")))
        };
        let read = |session: &Session, reader: &mut dyn Read, cap: usize, fail_over_cap: bool| {
            let mut out = Vec::new();
            let mut buf = [0u8; 16 * 1024];
            loop {
                if Instant::now() >= deadline {
                    return Err(timeout());
                }
                session.set_timeout(millis_left(deadline));
                match reader.read(&mut buf) {
                    Ok(0) => return Ok(out),
                    Ok(n) => {
                        if out.len() + n > cap {
                            if fail_over_cap {
                                return Err(ExecError::Failed(DriverError::Protocol(format!(
                                    "the command printed more than {cap} bytes while {doing}"
                                ))));
                            }
                            let room = cap.saturating_sub(out.len());
                            out.extend_from_slice(&buf[..room.min(n)]);
                        } else {
                            out.extend_from_slice(&buf[..n]);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(timeout()),
                    Err(e) => return Err(lost(e)),
                }
            }
        };
        let stdout = read(&self.session, &mut channel, MAX_STDOUT, true)?;
        let stderr = read(&self.session, &mut channel.stderr(), MAX_STDERR, false)?;
        self.session.set_timeout(millis_left(deadline));
        channel
            .wait_close()
            .map_err(|e| if is_timeout(&e) { timeout() } else { lost(e.into()) })?;
        let mut stderr = String::from_utf8_lossy(&stderr).into_owned();
        let mut status = channel.exit_status().map_err(|e| {
            ExecError::Failed(DriverError::Protocol(format!(
                "no exit status ({}) while {doing}",
                e.message()
            )))
        })?;
        // libssh2 reports 0 when the command was killed: look for a signal.
        if let Ok(signal) = channel.exit_signal()
            && let Some(name) = signal.exit_signal
        {
            status = -1;
            stderr = format!("killed by signal {name}; {stderr}");
        }
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr,
        })
    }

    /// Says goodbye to the server and closes the socket, within a second.
    pub(super) fn close(self) {
        self.session.set_timeout(1000);
        let _ = self
            .session
            .disconnect(None, "borne: connection no longer needed", None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_unpadded_base64_sha256() {
        // `ssh-keygen -lf` of this ed25519 key prints this fingerprint.
        let blob = base64::engine::general_purpose::STANDARD
            .decode("AAAAC3NzaC1lZDI1NTE5AAAAIFsmTwd5EmUFGfqf6LTqNFAW6Bf5zWOQdN6qKFrqdGI4")
            .unwrap();
        assert_eq!(fingerprint(&blob), "SHA256:qaucMRreC2s8/Aaf5QOxjixP+6zSOc0EcGSSjn1lHaw");
        assert!(same_fingerprint(
            "SHA256:qaucMRreC2s8/Aaf5QOxjixP+6zSOc0EcGSSjn1lHaw=",
            &fingerprint(&blob)
        ));
        assert!(!same_fingerprint("SHA256:AAAA", &fingerprint(&blob)));
    }

    #[test]
    fn known_hosts_lines_skip_markers_and_collect_revoked_keys() {
        let text = "# comment\n\n127.0.0.1 ssh-ed25519 AAAA1\n@cert-authority *.lan ssh-ed25519 AAAA2\n\
                    @revoked * ssh-ed25519 AAAA3\n|1|c2FsdA==|aGFzaA== ssh-rsa AAAA4\n";
        let (lines, revoked) = known_hosts_lines(text);
        assert_eq!(
            lines,
            vec!["127.0.0.1 ssh-ed25519 AAAA1", "|1|c2FsdA==|aGFzaA== ssh-rsa AAAA4"]
        );
        assert_eq!(revoked, vec!["AAAA3"]);
    }

    #[test]
    fn millis_left_is_never_zero() {
        assert_eq!(millis_left(Instant::now()), 1);
        assert!(millis_left(Instant::now() + Duration::from_secs(2)) > 1000);
    }
}
