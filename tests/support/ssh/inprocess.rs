//! `InProcessSsh`: an SSH server in the test process, for tests that must
//! run on a machine with only Rust (no OpenSSH server).
//!
//! Built on the `russh` crate's server (real SSH: key exchange, host key,
//! public-key and password authentication, session channels, exec
//! requests, exit status). It runs on a Tokio runtime of its own, so a
//! test can stop it, and every connection with it, by dropping that
//! runtime; [`SshFake::restart`] then binds the same port again with the
//! same host key. Exec requests run `/bin/sh -c <command>` with the fake
//! OpenWrt commands first on `PATH` ([`FakeOpenWrt::shell`]): the same
//! fake as behind the real sshd. A command still running when its channel
//! closes is killed.
//!
//! Accepted logins: the current user with the generated client key
//! ([`SshFake::client_key`]) or with [`InProcessSsh::password`].

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId};
use tokio::io::AsyncReadExt as _;
use tokio::sync::oneshot;

use super::{FakeOpenWrt, SshFake, TIMEOUT, current_user, known_hosts_line, write};

/// A fresh ed25519 key (seeded from the OS random source).
pub fn ed25519_key() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>()))
}

/// The OpenSSH public key line of a key.
pub fn public_line(key: &PublicKey) -> String {
    key.to_openssh().expect("encode public key")
}

struct Shared {
    fake: FakeOpenWrt,
    user: String,
    client: PublicKey,
    password: String,
    connections: AtomicUsize,
    open: AtomicUsize,
}

/// An SSH server on 127.0.0.1 in front of a [`FakeOpenWrt`].
pub struct InProcessSsh {
    port: u16,
    dir: tempfile::TempDir,
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    client_key: PathBuf,
    known_hosts: PathBuf,
    host_key: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcessSsh {
    /// Starts one with radios `radio0`/`wlan0` and `radio1`/`wlan1`.
    pub fn start() -> Self {
        Self::start_with(&[("radio0", "wlan0"), ("radio1", "wlan1")])
    }

    /// Starts one with these `(radio, ifname)` pairs.
    pub fn start_with(radios: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = FakeOpenWrt::install(dir.path(), radios);
        let host = ed25519_key();
        let client = ed25519_key();
        let client_key = dir.path().join("client_key");
        write(
            &client_key,
            &client.to_openssh(LineEnding::LF).expect("encode private key"),
        );
        let config = russh::server::Config {
            keys: vec![host.clone()],
            // Rejections wait this long; the tests make some on purpose.
            auth_rejection_time: Duration::from_millis(10),
            auth_rejection_time_initial: Some(Duration::ZERO),
            inactivity_timeout: Some(Duration::from_secs(600)),
            ..Default::default()
        };
        let listener = StdListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let host_key = public_line(host.public_key());
        let known_hosts = dir.path().join("known_hosts");
        write(
            &known_hosts,
            &known_hosts_line(&format!("[127.0.0.1]:{port}"), &host_key),
        );
        let mut server = InProcessSsh {
            port,
            dir,
            shared: Arc::new(Shared {
                fake,
                user: current_user(),
                client: client.public_key().clone(),
                password: "correct horse battery staple".to_owned(),
                connections: AtomicUsize::new(0),
                open: AtomicUsize::new(0),
            }),
            config: Arc::new(config),
            client_key,
            known_hosts,
            host_key,
            runtime: None,
        };
        server.serve(listener);
        server
    }

    /// The password it accepts for the current user.
    pub fn password(&self) -> &str {
        &self.shared.password
    }

    fn serve(&mut self, listener: StdListener) {
        listener.set_nonblocking(true).expect("nonblocking listener");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fake-ssh")
            .enable_all()
            .build()
            .expect("fake ssh runtime");
        let config = Arc::clone(&self.config);
        let shared = Arc::clone(&self.shared);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let handler = Handler {
                    shared: Arc::clone(&shared),
                    channels: HashMap::new(),
                    authenticated: false,
                };
                let config = Arc::clone(&config);
                tokio::spawn(async move {
                    // Errors are the client's doing (host key refused, connection dropped).
                    if let Ok(session) = russh::server::run_stream(config, stream, handler).await {
                        let _ = session.await;
                    }
                });
            }
        });
        self.runtime = Some(runtime);
    }

    /// Stops listening and drops every connection at once.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Not `drop`: that would block, which a test's runtime forbids.
            runtime.shutdown_background();
        }
    }
}

impl Drop for InProcessSsh {
    fn drop(&mut self) {
        self.stop();
    }
}

impl SshFake for InProcessSsh {
    fn label(&self) -> &'static str {
        "russh"
    }
    fn fake(&self) -> &FakeOpenWrt {
        &self.shared.fake
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn dir(&self) -> &Path {
        self.dir.path()
    }
    fn client_key(&self) -> &Path {
        &self.client_key
    }
    fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }
    fn host_key(&self) -> &str {
        &self.host_key
    }
    fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
    fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
    fn restart(&mut self) {
        self.stop();
        // The old runtime closes its sockets in the background: retry the bind.
        let deadline = Instant::now() + TIMEOUT;
        let listener = loop {
            match StdListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "cannot bind 127.0.0.1:{} again: {e}",
                        self.port
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        self.serve(listener);
    }
}

/// One connection.
struct Handler {
    shared: Arc<Shared>,
    /// Open channels; dropping the sender kills the channel's command.
    channels: HashMap<ChannelId, (Channel<Msg>, Option<oneshot::Sender<()>>)>,
    authenticated: bool,
}

impl Handler {
    fn accept(&mut self) -> Auth {
        self.shared.connections.fetch_add(1, Ordering::SeqCst);
        self.shared.open.fetch_add(1, Ordering::SeqCst);
        self.authenticated = true;
        Auth::Accept
    }
}

/// The handler lives as long as its connection.
impl Drop for Handler {
    fn drop(&mut self) {
        if self.authenticated {
            self.shared.open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl russh::server::Handler for Handler {
    type Error = russh::Error;

    async fn auth_publickey(&mut self, user: &str, key: &PublicKey) -> Result<Auth, Self::Error> {
        if user == self.shared.user && key.key_data() == self.shared.client.key_data() {
            Ok(self.accept())
        } else {
            Ok(Auth::reject())
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if user == self.shared.user && password == self.shared.password {
            Ok(self.accept())
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), (channel, None));
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.shared.fake.log_command(&command);
        session.channel_success(channel)?;
        let (kill, killed) = oneshot::channel();
        if let Some(entry) = self.channels.get_mut(&channel) {
            entry.1 = Some(kill);
        }
        let handle = session.handle();
        let mut cmd = self.shared.fake.shell(&command);
        tokio::spawn(async move {
            let run = async {
                let mut child = cmd.spawn()?;
                let mut stdout = child.stdout.take().expect("piped stdout");
                let mut stderr = child.stderr.take().expect("piped stderr");
                let (mut out, mut err) = (Vec::new(), Vec::new());
                let (a, b) = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
                a?;
                b?;
                let status = child.wait().await?;
                Ok::<_, std::io::Error>((out, err, status.code().unwrap_or(255)))
            };
            tokio::select! {
                result = run => {
                    let (out, err, code) = result.unwrap_or_else(|e| (Vec::new(), format!("fake ssh: {e}\n").into_bytes(), 255));
                    if !out.is_empty() {
                        let _ = handle.data(channel, out).await;
                    }
                    if !err.is_empty() {
                        let _ = handle.extended_data(channel, 1, err).await;
                    }
                    let _ = handle.exit_status_request(channel, u32::try_from(code).unwrap_or(255)).await;
                    let _ = handle.eof(channel).await;
                    let _ = handle.close(channel).await;
                }
                // The client closed the channel: the command is dropped, and killed.
                _ = killed => {}
            }
        });
        Ok(())
    }
}
