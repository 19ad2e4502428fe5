//! What borne's tests and benchmarks share, in one place (a dev-dependency
//! of borne, so it is compiled once):
//!
//! - [`peers`]: whether a missing peer (mosquitto, sshd, faketime, …) fails
//!   the run or skips the test: [`peers::require_peer`], one meaning of
//!   `BORNE_REQUIRE_PEERS` for every suite.
//! - [`wait`]: [`wait::wait_for`], [`wait::TIMEOUT`], [`wait::free_port`].
//! - [`daemon`]: a daemon in process ([`daemon::TestDaemon`], with a
//!   [`daemon::ManualClock`]) or as a real process
//!   ([`daemon::DaemonProcess`]).
//! - [`http`]: a plain HTTP/1.0 GET over a socket, for benchmarks and for
//!   probes that must not depend on a client library.
//! - [`http_load`]: closed-loop GETs on keep-alive connections, for the
//!   benchmarks.
//! - [`fixtures`]: the test configurations used by several suites.
//! - [`mqtt`]: a real Mosquitto or a scripted in-process broker, fake
//!   devices, spies, the `mosquitto_sub`/`mosquitto_pub` clients.
//! - [`oidc`]: a real OpenID Provider (tests/oidc, Node's `oidc-provider`)
//!   with a teacher, an admin and a stranger, for the single sign-on tests.
//! - [`postgres`]: a throwaway PostgreSQL cluster ([`postgres::PgCluster`]),
//!   run as an unprivileged user when the tests run as root.
//! - [`ssh`]: fake OpenWrt access points behind a real sshd (with the test
//!   user's login rc files masked) or an in-process russh server.
//!
//! Every helper that starts something stops it when dropped, also when the
//! test fails, by PID. Everything listens on 127.0.0.1 only.

pub mod api_call;
pub mod daemon;
pub mod fixtures;
pub mod http;
pub mod http_load;
pub mod mqtt;
pub mod oidc;
pub mod peers;
pub mod postgres;
pub mod ssh;
pub mod tls;
pub mod wait;
