//! `borne run`: wires the store, the core, the drivers, the reconciler and
//! the HTTP server together, and takes them down in order.
//!
//! [`start`] is the boot checklist; the shutdown trigger is a parameter
//! (a [`CancellationToken`]) so tests run the daemon in process with their
//! own token, and only [`main`] wires signals to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, Config, LoadError, Loaded};
use crate::core::{Clock, Core, SystemClock};
use crate::driver::sim::SimDriver;
use crate::ha::heartbeat::Heartbeat;
use crate::ha::{Cluster, Fence, Leadership, Term};
use crate::store::postgres::PostgresStore;
use crate::store::{Store, Writer, sqlite::SqliteStore};

mod follow;
mod term;

/// How long the process waits, once the daemon has stopped, for blocking
/// calls abandoned at the end of the grace period (an SSH command on a hung
/// AP, which libssh2 cannot interrupt) before it exits without them.
const BLOCKING_EXIT_WAIT: Duration = Duration::from_millis(200);

/// How the daemon is started; tests change the clock and the listener.
pub struct Options {
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// A listener already bound (tests bind 127.0.0.1:0); default: bind `listen`.
    pub listener: Option<std::net::TcpListener>,
    /// Where the configuration was read, for reloads.
    pub config_path: Option<PathBuf>,
    /// Interval of systemd watchdog pings, when systemd asks for them.
    pub watchdog: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            listener: None,
            config_path: None,
            watchdog: None,
        }
    }
}

/// A daemon that is up: its address, its core, and the task to await.
pub struct Running {
    /// The shared core (tests inspect it).
    pub core: Arc<Core>,
    /// The HTTP address actually bound.
    pub addr: SocketAddr,
    /// The simulated APs' driver (tests inspect it).
    pub sim: SimDriver,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until the daemon has shut down (after the token is cancelled).
    ///
    /// # Errors
    /// The final flush of the store failed, or a task panicked.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("the daemon's supervisor task failed")?
    }
}

/// Starts everything and returns once the HTTP listener is up.
///
/// # Errors
/// The store cannot be opened, a driver cannot start, or the address cannot be bound.
pub async fn start(config: Config, options: Options, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    // First: a busy port stops the start before any access point is touched.
    let listener = match options.listener {
        Some(l) => {
            l.set_nonblocking(true)?;
            TcpListener::from_std(l)?
        }
        None => TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?,
    };
    let instance_id = config.instance_id();
    let (store, shared) = open_store(&config, &instance_id).await?;
    let snapshot = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.load())
            .await
            .context("loading the state")??
    };
    let writer = Writer::start(store).context("starting the state database writer")?;
    let core = Core::new(config.clone(), snapshot, writer.clone(), options.clock.clone());
    let tracker = TaskTracker::new();
    let ctx = term::Context {
        core: core.clone(),
        sim: SimDriver::new(),
        watchdog: options.watchdog,
        shared: shared.is_some(),
    };
    start_leadership(&ctx, shared, &tracker, &shutdown).await?;
    tracker.spawn(crate::calendars::refresh::run(
        {
            let c = core.clone();
            move || c.config()
        },
        {
            let c = core.clone();
            move |cfg| {
                let c = c.clone();
                async move {
                    if let Err(e) = c.replace_config(cfg).await {
                        tracing::error!(error = %e, "cannot adopt the refreshed calendars");
                    }
                }
            }
        },
        {
            let c = core.clone();
            move |name: &str| {
                c.metrics
                    .calendar_fetch_failures
                    .get_or_create(&crate::metrics::CalendarLabels {
                        calendar: name.to_owned(),
                    })
                    .inc();
            }
        },
        shutdown.child_token(),
    ));

    let addr = listener.local_addr()?;
    let app = crate::api::router(core.clone(), options.config_path.clone(), shutdown.clone());
    tracker.spawn(crate::api::server::serve(listener, app, core.clone(), shutdown.clone()));
    tracing::info!(%addr, classrooms = config.classrooms.len(), access_points = config.access_points.len(), instance = %core.cluster().self_id(), "borne is ready");
    if config.demo {
        print_demo_banner(&config, addr);
    }

    let grace = config.reconciler.shutdown_grace;
    let done = tokio::spawn(async move {
        shutdown.cancelled().await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down: finishing operations in flight"
        );
        tracker.close();
        // The leader term's own wait is bounded by the same grace.
        if tokio::time::timeout(grace + Duration::from_secs(1), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "operations still in flight after the grace period; leaving them"
            );
        }
        writer.flush().await.context("flushing the state database")?;
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Running {
        core,
        addr,
        sim: ctx.sim,
        done,
    })
}

/// Who drives the access points. A lone instance: itself, one term for
/// the life of the daemon, started before the API answers. On a shared
/// database: whoever holds the lock (`ha`); this instance follows the
/// others' changes meanwhile.
async fn start_leadership(
    ctx: &term::Context,
    shared: Option<PostgresStore>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let core = &ctx.core;
    let config = core.config();
    let (id, sha) = (config.instance_id(), config.ha.config_sha256.clone());
    let Some(pg) = shared else {
        core.set_cluster(Arc::new(Cluster::alone(id, sha)));
        let term = Arc::new(Term {
            number: 1,
            fence: Arc::new(Fence::open()),
            // Not a child of `shutdown`: at a shutdown the term's operations
            // in flight finish within the grace period (`term::stop`)
            // before it is cancelled.
            cancel: CancellationToken::new(),
        });
        let first = term::start(ctx, &term).await?;
        let (_, terms) = watch::channel(None);
        tracker.spawn(term::run(ctx.clone(), terms, Some(first), shutdown.clone()));
        return Ok(());
    };
    let cluster = Arc::new(Cluster::shared(id.clone(), sha));
    core.set_cluster(cluster.clone());
    core.metrics.leadership.leader.set(0);
    let connect = connector(pg.clone());
    let (leadership, terms) = Leadership::new(
        connect.clone(),
        cluster.clone(),
        &config.ha,
        core.metrics.leadership.clone(),
    );
    tracker.spawn(leadership.run(shutdown.clone()));
    let heartbeat = Heartbeat::new(
        connect.clone(),
        cluster,
        core.now(),
        core.metrics.config_mismatch.clone(),
    );
    tracker.spawn(heartbeat.run(shutdown.clone()));
    let (changes_tx, changes) = mpsc::unbounded_channel();
    tracker.spawn(crate::ha::listen::run(connect, id, changes_tx, shutdown.clone()));
    tracker.spawn(follow::run(
        core.clone(),
        Arc::new(follow::Shared(pg)),
        changes,
        shutdown.clone(),
    ));
    tracker.spawn(term::run(ctx.clone(), terms, None, shutdown.clone()));
    Ok(())
}

/// The store: PostgreSQL when `database:` is set (returned a second time
/// for what instances share), else the SQLite file.
async fn open_store(
    config: &Arc<Config>,
    instance_id: &str,
) -> anyhow::Result<(Arc<dyn Store>, Option<PostgresStore>)> {
    match &config.database {
        Some(db) => {
            let (db, id) = (db.clone(), instance_id.to_owned());
            let pg = tokio::task::spawn_blocking(move || PostgresStore::open(&db, &id))
                .await
                .context("opening the state database")?
                .context("opening the state database")?;
            tracing::info!(database = %pg.target(), "state in PostgreSQL");
            Ok((Arc::new(pg.clone()), Some(pg)))
        }
        None => {
            let state_dir = config.state_dir.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&state_dir))
                .await
                .context("opening the state database")??;
            Ok((Arc::new(store), None))
        }
    }
}

/// Opens the dedicated sessions of the leadership lock, `LISTEN` and the
/// heartbeats, with the store's address, password and TLS.
fn connector(pg: PostgresStore) -> crate::ha::Connect {
    Arc::new(move || {
        let pg = pg.clone();
        Box::pin(async move {
            let (client, connection) = pg.dedicated_connection().await.map_err(|e| e.to_string())?;
            Ok(crate::ha::Session::new(client, connection))
        })
    })
}

/// Gives the memory freed after parsing a configuration back to the
/// operating system. Parsing a city-sized YAML file (20,000 access points)
/// briefly takes tens of megabytes that glibc's allocator would otherwise
/// keep for the life of the daemon.
pub fn release_parse_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has
    // no preconditions and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Re-reads the configuration and adopts it if valid. The HTTP address and
/// the broker connection are kept until a restart.
///
/// # Errors
/// The new configuration is unreadable or invalid: the old one stays.
pub async fn reload(core: &Core, path: &Path) -> Result<Loaded, LoadError> {
    let result = reload_inner(core, path).await;
    core.writer()
        .enqueue(crate::store::Batch::audit(vec![reload_audit(core, path, &result)]));
    result.map(|(loaded, _)| loaded)
}

/// The `config.reload` audit row: what changed (counts) and the SHA-256 of
/// the file now in force, or why it was refused.
fn reload_audit(
    core: &Core,
    path: &Path,
    result: &Result<(Loaded, config::changes::Changes), LoadError>,
) -> crate::store::AuditRecord {
    let sha = std::fs::read(path).map_or_else(|_| "unreadable".to_owned(), |b| config::changes::sha256_hex(&b));
    let (detail, result) = match result {
        Ok((_, changes)) => (format!("{changes}; sha256 {sha}"), "ok".to_owned()),
        Err(LoadError::Invalid { errors, .. }) => (
            format!(
                "{} error(s), first: {}; sha256 {sha}",
                errors.len(),
                errors.first().map_or("", |e| e.message.as_str())
            ),
            "error: invalid".to_owned(),
        ),
        Err(e) => (format!("{e}"), "error: unreadable".to_owned()),
    };
    crate::store::AuditRecord {
        at: core.now(),
        actor: "borne".into(),
        role: None,
        classroom: None,
        access_point: None,
        action: "config.reload".into(),
        detail,
        result,
        source: None,
        via: None,
    }
}

async fn reload_inner(core: &Core, path: &Path) -> Result<(Loaded, config::changes::Changes), LoadError> {
    let loaded = config::load(path)?;
    let missing: Vec<_> = loaded.warnings.iter().filter(|w| w.missing_file).cloned().collect();
    if !missing.is_empty() {
        return Err(LoadError::Invalid {
            source_name: path.display().to_string(),
            errors: missing,
        });
    }
    let old = core.config();
    if old.listen != loaded.config.listen {
        tracing::warn!(old = %old.listen, new = %loaded.config.listen, "listen address changes take effect at restart");
    }
    if old.state_dir != loaded.config.state_dir {
        tracing::warn!("state_dir changes take effect at restart");
    }
    if old.database != loaded.config.database {
        tracing::warn!("database changes take effect at restart");
    }
    if old.limits.max_connections != loaded.config.limits.max_connections
        || old.limits.failed_auth_addresses != loaded.config.limits.failed_auth_addresses
    {
        tracing::warn!("limits.max_connections and limits.failed_auth_addresses changes take effect at restart");
    }
    // The instance's identity is fixed for its life (heartbeat row, MQTT
    // client id); `listen` takes effect at restart anyway.
    let mut loaded = loaded;
    loaded.config.listen = old.listen;
    loaded.config.ha.instance_id = old.ha.instance_id.clone();
    if old.database != loaded.config.database {
        tracing::warn!("database changes take effect at restart");
    }
    core.cluster().set_config_sha256(loaded.config.ha.config_sha256.clone());
    let changes = config::changes::Changes::between(&old, &loaded.config);
    if let Err(e) = core.replace_config(Arc::new(loaded.config.clone())).await {
        tracing::error!(error = %e, "the sessions this reload ended could not be stored; the next start ends them again");
    }
    release_parse_memory();
    Ok((loaded, changes))
}

fn print_demo_banner(config: &Config, addr: SocketAddr) {
    let base = if config.public_url.contains("127.0.0.1:0") {
        format!("http://{addr}")
    } else {
        config.public_url.clone()
    };
    let mut out = format!(
        "\nborne demo: {} classrooms, simulated access points\n",
        config.classrooms.len()
    );
    for u in &config.users {
        let Some(token) = &u.demo_token else { continue };
        out.push_str(&format!("\n  {} ({})\n", u.name, u.role));
        match u.role {
            crate::config::Role::Admin | crate::config::Role::Viewer => {
                out.push_str(&format!("    dashboard: {base}/admin#token={token}\n"));
            }
            crate::config::Role::Teacher => {
                out.push_str(&format!("    teacher page: {base}/#token={token}\n"));
            }
        }
        out.push_str(&format!(
            "    curl -H 'Authorization: Bearer {token}' {base}/api/v1/classrooms\n"
        ));
    }
    println!("{out}");
}

/// `borne run`: the runtime, signals, systemd notifications; returns the
/// process exit code.
pub fn main(path: PathBuf, loaded: Loaded) -> ExitCode {
    for w in &loaded.warnings {
        tracing::warn!(location = %w.location, "{}", w.message);
    }
    let missing: Vec<_> = loaded.warnings.iter().filter(|w| w.missing_file).collect();
    if !missing.is_empty() {
        for m in missing {
            eprintln!("error: {m}");
        }
        eprintln!("refusing to start: the configuration points to files that cannot be read");
        return ExitCode::FAILURE;
    }
    // SSH operations run on the blocking pool, at most `max_parallel` at a
    // time: size the pool so that none waits for a thread while its
    // connect timeout runs.
    let blocking = loaded.config.reconciler.max_parallel + 64;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking.max(512))
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(serve(path, loaded.config));
    // Dropping the runtime would wait for every blocking call, however
    // long: the process must exit within the grace period.
    runtime.shutdown_timeout(BLOCKING_EXIT_WAIT);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: PathBuf, config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let shutdown = CancellationToken::new();
    let mut usec = 0u64;
    let watchdog = sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2));
    let options = Options {
        config_path: Some(path.clone()),
        watchdog,
        ..Options::default()
    };
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let running = start(config, options, shutdown.clone()).await?;
    release_parse_memory();
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let core = running.core.clone();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                match reload(&core, &path).await {
                    Ok(l) => tracing::info!(summary = %crate::cli::summary(&l.config), "configuration reloaded"),
                    Err(LoadError::Invalid { errors, .. }) => {
                        for e in &errors {
                            tracing::error!(location = %e.location, "{}", e.message);
                        }
                        tracing::error!(errors = errors.len(), "reload refused: keeping the running configuration");
                    }
                    Err(e) => tracing::error!(error = %e, "reload refused: keeping the running configuration"),
                }
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    shutdown.cancel();
    running.wait().await
}
