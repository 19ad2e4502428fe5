//! The SSH driver against real SSH servers in front of a fake OpenWrt AP:
//! OpenSSH's `sshd` (module `sshd`, skipped when it is not installed unless
//! `BORNE_REQUIRE_PEERS=1`) and an in-process `russh` server (module
//! `russh`, always run). Every scenario runs against both; the harness is
//! `tests/support/ssh/`.

use borne_test_support::ssh as ssh_support;

use std::time::{Duration, Instant};

use borne::config::{HostKeyCheck, SshAuth, SshPreset};
use borne::driver::ssh::SshDriver;
use borne::driver::{Driver, DriverError, Observation, ObservedWifi};
use borne::policy::Wifi;
use ssh_support::*;
use tokio_util::sync::CancellationToken;

fn driver() -> SshDriver {
    SshDriver::new(CancellationToken::new())
}

fn custom(on: &str, off: &str, status: &str, status_on: Option<&str>, status_off: Option<&str>) -> SshPreset {
    SshPreset::Custom(borne::config::CustomCommands {
        on_command: on.to_owned(),
        off_command: off.to_owned(),
        status_command: status.to_owned(),
        status_on: status_on.map(|r| regex::Regex::new(r).expect("regex")),
        status_off: status_off.map(|r| regex::Regex::new(r).expect("regex")),
        clients_command: None,
        lease_command: None,
    })
}

/// Runs each scenario against sshd (when installed) and the in-process server.
macro_rules! against_both {
    ($($(#[doc = $doc:literal])+ $name:ident),* $(,)?) => {
        mod sshd {
            $(
                $(#[doc = $doc])+
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(mut server) = super::TestSshd::start() else { return };
                    super::$name(&mut server).await;
                }
            )*
        }
        mod russh {
            $(
                $(#[doc = $doc])+
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let mut server = super::InProcessSsh::start();
                    super::$name(&mut server).await;
                }
            )*
        }
    };
}

against_both! {
    /// on → off → on persists in the committed config and the running state.
    on_off_on_persists_and_reads_back,
    /// Radios that disagree are unknown; stations of up radios are counted.
    observe_reports_unknown_for_mixed_radios_and_counts_clients,
    /// With `radios:` given, only those are switched and read.
    configured_radios_only_are_switched,
    /// A known_hosts with another key for the host: refused, nothing run.
    changed_host_key_in_known_hosts_is_refused,
    /// A host absent from known_hosts: refused, with the fingerprint to check.
    unknown_host_is_refused,
    /// A wrong host_key_sha256: refused, nothing run; the right one works.
    host_key_fingerprint_is_checked,
    /// Hashed (`|1|salt|hash`) known_hosts entries are matched.
    hashed_known_hosts_entry_is_accepted,
    /// A hung `wifi reload` times out within seconds; the next operation works.
    hung_command_times_out_and_next_operation_works,
    /// A failing switch is CommandFailed with its stderr.
    failing_switch_is_command_failed,
    /// Garbage from ubus is a protocol error, not a state.
    garbage_status_is_a_protocol_error,
    /// The custom preset, with regexes and with exit statuses.
    custom_preset_switches_and_reads,
    /// Two operations in the reuse window share one connection; a server
    /// restart in between is recovered transparently.
    connection_is_reused_and_reestablished,
    /// `reuse_seconds: 0` closes after each operation.
    reuse_zero_opens_a_connection_per_operation,
    /// Operations on one AP run one at a time (and so share a connection).
    operations_on_one_ap_are_serialized,
    /// The reaper closes idle connections; shutdown closes the rest.
    idle_connections_are_closed_by_reaper_and_shutdown,
    /// reconfigure closes connections of APs that left or whose settings changed.
    reconfigure_drops_stale_connections,
    /// insecure_ignore_host_key connects to any key.
    insecure_accepts_any_host_key,
}

async fn on_off_on_persists_and_reads_back(server: &mut dyn SshFake) {
    let d = driver();
    let ap = access_point("ap1", ssh_ap(server));
    let fake = server.fake();
    assert!(fake.all(true));

    let seen = d.apply(&ap, Wifi::Off).await.expect("switch off");
    assert_eq!(seen, Observation::read(ObservedWifi::Off, Some(0)));
    assert!(
        fake.all(false),
        "{} off in committed config and running state",
        server.label()
    );

    let seen = d.apply(&ap, Wifi::On).await.expect("switch on");
    assert_eq!(seen.wifi, ObservedWifi::On);
    assert!(fake.all(true));

    let seen = d.apply(&ap, Wifi::Off).await.expect("switch off again");
    assert_eq!(seen.wifi, ObservedWifi::Off);
    assert_eq!(
        fake.state("radio0"),
        RadioState {
            committed_on: false,
            running_on: false
        }
    );
    assert_eq!(d.observe(&ap).await.expect("observe").wifi, ObservedWifi::Off);

    let commands = fake.commands();
    assert!(
        commands.iter().any(|c| c
            == "uci set wireless.radio0.disabled=1 && uci set wireless.radio1.disabled=1 && uci commit wireless && wifi reload"),
        "{commands:#?}"
    );
    d.shutdown().await;
}

async fn observe_reports_unknown_for_mixed_radios_and_counts_clients(server: &mut dyn SshFake) {
    let d = driver();
    let ap = access_point("ap1", ssh_ap(server));
    let fake = server.fake();
    fake.set_stations("wlan0", 3);
    fake.set_stations("wlan1", 2);
    assert_eq!(
        d.observe(&ap).await.expect("observe"),
        Observation::read(ObservedWifi::On, Some(5))
    );

    fake.set_running("radio1", false);
    assert_eq!(
        d.observe(&ap).await.expect("observe"),
        Observation::read(ObservedWifi::Unknown, Some(3))
    );

    fake.set_running("radio0", false);
    assert_eq!(
        d.observe(&ap).await.expect("observe"),
        Observation::read(ObservedWifi::Off, Some(0))
    );
    d.shutdown().await;
}

async fn configured_radios_only_are_switched(server: &mut dyn SshFake) {
    let d = driver();
    let mut ssh = ssh_ap(server);
    ssh.preset = SshPreset::OpenWrt {
        radios: vec!["radio1".to_owned()],
    };
    let ap = access_point("ap1", ssh);
    let fake = server.fake();
    let seen = d.apply(&ap, Wifi::Off).await.expect("switch off");
    assert_eq!(seen.wifi, ObservedWifi::Off);
    assert_eq!(
        fake.state("radio1"),
        RadioState {
            committed_on: false,
            running_on: false
        }
    );
    assert_eq!(
        fake.state("radio0"),
        RadioState {
            committed_on: true,
            running_on: true
        }
    );
    assert!(
        !fake.commands().iter().any(|c| c.contains("uci -q show")),
        "no discovery when radios are given"
    );

    let mut ssh = ssh_ap(server);
    ssh.preset = SshPreset::OpenWrt {
        radios: vec!["radio9".to_owned()],
    };
    let err = d.apply(&access_point("ap2", ssh), Wifi::Off).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::CommandFailed { status: 1, stderr, .. } if stderr.contains("Invalid argument")),
        "{err:?}"
    );
    d.shutdown().await;
}

/// Asserts `result` is a host key rejection naming the host, and that
/// nothing reached the AP.
fn assert_refused(server: &dyn SshFake, result: Result<Observation, DriverError>, must_contain: &str) {
    match result {
        Err(DriverError::HostKey(message)) => {
            assert!(message.contains("127.0.0.1"), "{message}");
            assert!(message.contains(&server.fingerprint()), "names the key seen: {message}");
            assert!(message.contains(must_contain), "{message}");
        }
        other => panic!("{}: expected a host key error, got {other:?}", server.label()),
    }
    assert!(server.fake().all(true), "state unchanged");
    assert_eq!(server.fake().commands(), Vec::<String>::new(), "no command ran");
}

async fn changed_host_key_in_known_hosts_is_refused(server: &mut dyn SshFake) {
    let d = driver();
    let other = inprocess::public_line(inprocess::ed25519_key().public_key());
    let known_hosts = server.dir().join("known_hosts_other");
    std::fs::write(
        &known_hosts,
        known_hosts_line(&format!("[127.0.0.1]:{}", server.port()), &other),
    )
    .unwrap();
    let mut ssh = ssh_ap(server);
    ssh.host_key = HostKeyCheck::KnownHosts(known_hosts);
    let result = d.apply(&access_point("ap1", ssh), Wifi::Off).await;
    assert_refused(server, result, "CHANGED");
}

async fn unknown_host_is_refused(server: &mut dyn SshFake) {
    let d = driver();
    let known_hosts = server.dir().join("known_hosts_elsewhere");
    std::fs::write(&known_hosts, known_hosts_line("[127.0.0.1]:1", server.host_key())).unwrap();
    let mut ssh = ssh_ap(server);
    ssh.host_key = HostKeyCheck::KnownHosts(known_hosts);
    let result = d.apply(&access_point("ap1", ssh), Wifi::Off).await;
    assert_refused(server, result, "ssh-keyscan");
}

async fn host_key_fingerprint_is_checked(server: &mut dyn SshFake) {
    let d = driver();
    let mut ssh = ssh_ap(server);
    let wrong = fingerprint_of(&inprocess::public_line(inprocess::ed25519_key().public_key()));
    ssh.host_key = HostKeyCheck::Fingerprint(wrong.clone());
    let result = d.apply(&access_point("ap1", ssh.clone()), Wifi::Off).await;
    assert_refused(server, result, &wrong);

    ssh.host_key = HostKeyCheck::Fingerprint(server.fingerprint());
    let seen = d
        .apply(&access_point("ap1", ssh), Wifi::Off)
        .await
        .expect("right fingerprint");
    assert_eq!(seen.wifi, ObservedWifi::Off);
    d.shutdown().await;
}

async fn hashed_known_hosts_entry_is_accepted(server: &mut dyn SshFake) {
    if !require_ssh_keygen() {
        return;
    }
    let d = driver();
    let known_hosts = server.dir().join("known_hosts_hashed");
    let mut text = known_hosts_line("ap.example", server.host_key());
    text.push_str(&known_hosts_line(
        &format!("[127.0.0.1]:{}", server.port()),
        server.host_key(),
    ));
    std::fs::write(&known_hosts, text).unwrap();
    ssh_keygen(&["-q", "-H", "-f", known_hosts.to_str().unwrap()]);
    let hashed = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(hashed.lines().all(|l| l.starts_with("|1|")), "{hashed}");

    let mut ssh = ssh_ap(server);
    ssh.host_key = HostKeyCheck::KnownHosts(known_hosts);
    let seen = d
        .apply(&access_point("ap1", ssh), Wifi::Off)
        .await
        .expect("hashed entry matches");
    assert_eq!(seen.wifi, ObservedWifi::Off);
    d.shutdown().await;
}

async fn hung_command_times_out_and_next_operation_works(server: &mut dyn SshFake) {
    let d = driver();
    let mut ssh = ssh_ap(server);
    ssh.command_timeout = Duration::from_secs(1);
    let ap = access_point("ap1", ssh);
    let fake = server.fake();
    fake.set_hang(true);
    let started = Instant::now();
    let err = d.apply(&ap, Wifi::Off).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    match &err {
        DriverError::Timeout { seconds: 1, doing } => {
            assert!(doing.contains("switching off over ssh"), "{doing}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    fake.set_hang(false);
    let seen = d.apply(&ap, Wifi::Off).await.expect("next operation");
    assert_eq!(seen.wifi, ObservedWifi::Off);
    assert!(fake.all(false));
    d.shutdown().await;
}

async fn failing_switch_is_command_failed(server: &mut dyn SshFake) {
    let d = driver();
    let ap = access_point("ap1", ssh_ap(server));
    server
        .fake()
        .set_reload_failure(Some("radio0(mac80211): enable failed"));
    let err = d.apply(&ap, Wifi::Off).await.unwrap_err();
    match &err {
        DriverError::CommandFailed { status, stderr, doing } => {
            assert_eq!((*status, stderr.as_str()), (1, "radio0(mac80211): enable failed"));
            assert!(doing.starts_with("switching off over ssh "), "{doing}");
        }
        other => panic!("{other:?}"),
    }
    d.shutdown().await;
}

async fn garbage_status_is_a_protocol_error(server: &mut dyn SshFake) {
    let d = driver();
    let ap = access_point("ap1", ssh_ap(server));
    server.fake().set_ubus_output(Some("{\"radio0\": {\"up\": tru"));
    let err = d.observe(&ap).await.unwrap_err();
    assert!(
        matches!(&err, DriverError::Protocol(m) if m.contains("network.wireless")),
        "{err:?}"
    );
    d.shutdown().await;
}

async fn custom_preset_switches_and_reads(server: &mut dyn SshFake) {
    let d = driver();
    let fake = server.fake();
    fake.set_stations("wlan0", 4);
    // A device with its own words: the fake's commands stand in for `wl`/`nvram`.
    let mut preset = custom(
        "uci set wireless.radio0.disabled=0 && uci commit wireless && wifi reload",
        "uci set wireless.radio0.disabled=1 && uci commit wireless && wifi reload",
        "if ubus call network.wireless status | grep -q '\"up\": true'; then echo 'radio: up'; else echo 'radio: down'; fi",
        Some("^radio: up$"),
        Some("^radio: down$"),
    );
    if let SshPreset::Custom(c) = &mut preset {
        c.clients_command = Some("iw dev wlan0 station dump | grep -c '^Station'".to_owned());
    }
    let mut ssh = ssh_ap(server);
    ssh.preset = preset;
    let ap = access_point("ap1", ssh);
    fake.set_radio("radio1", false);
    let seen = d.apply(&ap, Wifi::Off).await.expect("custom off");
    assert_eq!(seen, Observation::read(ObservedWifi::Off, Some(0)));
    assert_eq!(
        fake.state("radio0"),
        RadioState {
            committed_on: false,
            running_on: false
        }
    );
    let seen = d.apply(&ap, Wifi::On).await.expect("custom on");
    assert_eq!(seen, Observation::read(ObservedWifi::On, Some(4)));

    // Without regexes: the exit status of status_command tells.
    let mut ssh = ssh_ap(server);
    ssh.preset = custom(
        "uci set wireless.radio0.disabled=0 && uci commit wireless && wifi reload",
        "uci set wireless.radio0.disabled=1 && uci commit wireless && wifi reload",
        "grep -qx 0 \"$FAKE_DIR/running/radio0\"",
        None,
        None,
    );
    let ap = access_point("ap1", ssh);
    assert_eq!(d.observe(&ap).await.expect("observe").wifi, ObservedWifi::On);
    assert_eq!(d.apply(&ap, Wifi::Off).await.expect("off").wifi, ObservedWifi::Off);
    d.shutdown().await;
}

async fn connection_is_reused_and_reestablished(server: &mut dyn SshFake) {
    let d = driver();
    let ap = access_point("ap1", ssh_ap(server));
    d.apply(&ap, Wifi::Off).await.expect("first");
    d.observe(&ap).await.expect("second");
    assert_eq!(server.connections(), 1, "{}: one connection for both", server.label());

    server.restart();
    let seen = d.apply(&ap, Wifi::On).await.expect("after restart");
    assert_eq!(seen.wifi, ObservedWifi::On);
    assert_eq!(server.connections(), 2, "one new connection after the restart");
    d.observe(&ap).await.expect("then reused again");
    assert_eq!(server.connections(), 2);
    d.shutdown().await;
}

async fn reuse_zero_opens_a_connection_per_operation(server: &mut dyn SshFake) {
    let d = driver();
    let mut ssh = ssh_ap(server);
    ssh.reuse = Duration::ZERO;
    let ap = access_point("ap1", ssh);
    d.observe(&ap).await.expect("first");
    d.observe(&ap).await.expect("second");
    assert_eq!(server.connections(), 2);
}

async fn operations_on_one_ap_are_serialized(server: &mut dyn SshFake) {
    let d = driver();
    let ap = access_point("ap1", ssh_ap(server));
    server.fake().set_reload_delay(Duration::from_millis(300));
    let (a, b) = tokio::join!(d.apply(&ap, Wifi::Off), d.observe(&ap));
    a.expect("apply");
    b.expect("observe");
    assert_eq!(
        server.connections(),
        1,
        "the second operation waited and reused the connection"
    );
    d.shutdown().await;
}

async fn idle_connections_are_closed_by_reaper_and_shutdown(server: &mut dyn SshFake) {
    let d = driver();
    let mut ssh = ssh_ap(server);
    ssh.reuse = Duration::from_secs(1);
    d.observe(&access_point("ap1", ssh)).await.expect("observe");
    assert_eq!(server.open_connections(), 1);
    wait_for("the reaper to close the idle connection", || {
        server.open_connections() == 0
    })
    .await;

    d.observe(&access_point("ap1", ssh_ap(server))).await.expect("observe");
    assert_eq!(server.open_connections(), 1);
    d.shutdown().await;
    wait_for("shutdown to close the kept connection", || {
        server.open_connections() == 0
    })
    .await;
    assert_eq!(server.connections(), 2);
}

async fn reconfigure_drops_stale_connections(server: &mut dyn SshFake) {
    let d = driver();
    let config = config(&[("ap1", &*server)]);
    let ap = config.access_point("ap1").expect("ap1").clone();
    d.observe(&ap).await.expect("observe");
    d.reconfigure(&config).await;
    d.observe(&ap).await.expect("observe");
    assert_eq!(server.connections(), 1, "same settings: connection kept");

    // Settings changed (fingerprint instead of known_hosts): reconnect.
    let yaml = config_yaml(&[("ap1", &*server)]).replace(
        &format!("known_hosts: \"{}\"", server.known_hosts().display()),
        &format!("host_key_sha256: \"{}\"", server.fingerprint()),
    );
    let changed = std::sync::Arc::new(borne::config::from_str(&yaml, "t.yaml", None).expect("valid").config);
    d.reconfigure(&changed).await;
    let ap = changed.access_point("ap1").expect("ap1").clone();
    d.observe(&ap).await.expect("observe");
    assert_eq!(server.connections(), 2, "settings changed: new connection");

    wait_for("the old connection to close", || server.open_connections() == 1).await;

    // The AP left: its connection is closed.
    let other = config_yaml(&[("ap2", &*server)]);
    let other = std::sync::Arc::new(borne::config::from_str(&other, "t.yaml", None).expect("valid").config);
    d.reconfigure(&other).await;
    wait_for("the connection of the AP that left to close", || {
        server.open_connections() == 0
    })
    .await;
    d.observe(&ap).await.expect("an AP coming back gets a new connection");
    assert_eq!(server.connections(), 3);
    d.shutdown().await;
}

async fn insecure_accepts_any_host_key(server: &mut dyn SshFake) {
    let d = driver();
    let mut ssh = ssh_ap(server);
    ssh.host_key = HostKeyCheck::Insecure;
    assert_eq!(
        d.observe(&access_point("ap1", ssh)).await.expect("observe").wifi,
        ObservedWifi::On
    );
    d.shutdown().await;
}

// ------------------------------------------------------------ one server only

/// Nothing listening: Unreachable, at once.
#[tokio::test]
async fn connection_refused_is_unreachable_quickly() {
    let server = InProcessSsh::start();
    let mut ssh = ssh_ap(&server);
    ssh.port = free_port();
    let started = Instant::now();
    let err = driver().apply(&access_point("ap1", ssh), Wifi::Off).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    match err {
        DriverError::Unreachable(m) => {
            assert!(m.contains("refused") && m.contains("switching off over ssh"), "{m}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

/// A password from password_file (trimmed) logs in; a wrong one is
/// AuthFailed without the password in the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_file_authenticates() {
    let server = InProcessSsh::start();
    let file = server.dir().join("password");
    std::fs::write(&file, format!("{}\n", server.password())).unwrap();
    let mut ssh = ssh_ap(&server);
    ssh.auth = SshAuth::Password {
        password_file: file.clone(),
    };
    let d = driver();
    assert_eq!(
        d.observe(&access_point("ap1", ssh.clone()))
            .await
            .expect("observe")
            .wifi,
        ObservedWifi::On
    );

    std::fs::write(&file, "hunter2-wrong\n").unwrap();
    let err = driver().observe(&access_point("ap1", ssh)).await.unwrap_err();
    assert!(matches!(&err, DriverError::AuthFailed(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    d.shutdown().await;
}

/// An encrypted key with passphrase_file (read at connect time) logs in to
/// OpenSSH; a wrong passphrase is AuthFailed without the passphrase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_key_with_passphrase_file() {
    let Some(server) = TestSshd::start() else {
        return;
    };
    let key = server.dir().join("encrypted_key");
    let public = keygen(&key, "s3cret-phrase");
    let authorized = server.dir().join("sshd").join("authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&format!("{public}\n"));
    std::fs::write(&authorized, keys).unwrap();
    let phrase = server.dir().join("passphrase");
    std::fs::write(&phrase, "s3cret-phrase\n").unwrap();
    let mut ssh = ssh_ap(&server);
    ssh.auth = SshAuth::Key {
        key_file: key,
        passphrase_file: Some(phrase.clone()),
    };
    assert_eq!(
        driver()
            .observe(&access_point("ap1", ssh.clone()))
            .await
            .expect("observe")
            .wifi,
        ObservedWifi::On
    );

    std::fs::write(&phrase, "wrong-phrase\n").unwrap();
    let err = driver().observe(&access_point("ap1", ssh)).await.unwrap_err();
    assert!(matches!(&err, DriverError::AuthFailed(_)), "{err:?}");
    assert!(
        !err.to_string().contains("phrase\n") && !err.to_string().contains("s3cret"),
        "{err}"
    );
}

/// An AP that is not an SSH AP is a setup error, not a panic.
#[tokio::test]
async fn non_ssh_access_point_is_a_setup_error() {
    let server = InProcessSsh::start();
    let mut ap = access_point("ap1", ssh_ap(&server));
    ap.driver = borne::config::DriverConfig::Sim(borne::config::SimAp {
        latency: Duration::ZERO,
        fail_rate: 0.0,
        clients: 0,
        seed: 0,
    });
    assert!(matches!(driver().observe(&ap).await, Err(DriverError::Setup(_))));
}
