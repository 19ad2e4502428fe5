//! The throwaway PostgreSQL cluster of the tests (tests/support/postgres.rs):
//! it starts, serves a database, survives a restart with its data, and
//! leaves neither a process nor a directory behind.

use borne_test_support::postgres::PgCluster;

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn cluster_starts_restarts_and_cleans_up() {
    let Some(mut pg) = PgCluster::start() else { return };
    let url = pg.create_database("harness");
    assert_eq!(url, format!("postgres://borne@127.0.0.1:{}/harness", pg.port()));
    pg.psql("harness", "CREATE TABLE t (v int); INSERT INTO t VALUES (42)");
    let first = pg.pid().expect("running");
    assert!(alive(first));

    pg.stop();
    assert!(pg.pid().is_none());
    assert!(!alive(first), "postmaster {first} still running after stop");
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_err());

    pg.restart();
    let second = pg.pid().expect("running again");
    assert_ne!(first, second);
    assert_eq!(
        pg.psql("harness", "SELECT v FROM t").trim(),
        "42",
        "data kept across a restart"
    );

    // Only loopback: the server listens on 127.0.0.1 alone.
    let listen = pg.psql("postgres", "SHOW listen_addresses");
    assert_eq!(listen.trim(), "127.0.0.1");

    let dir = pg.data_dir();
    drop(pg);
    assert!(!alive(second), "postmaster {second} still running after drop");
    assert!(!dir.exists(), "{} left behind", dir.display());
}
