//! `database.tls` against a real PostgreSQL with TLS on (a throwaway CA
//! and server certificate made with `openssl`): `require` encrypts,
//! `verify-full` checks the chain and the name, `disable` does not
//! encrypt, and `require` refuses a server without TLS.

use std::path::Path;

use borne::config::database::{Database, RawDatabase, validate};
use borne::store::postgres::PostgresStore;
use borne_test_support::peers::require_program;
use borne_test_support::postgres::PgCluster;
use borne_test_support::tls::TlsFiles;

/// A CA and a server certificate for `localhost` / 127.0.0.1 signed by it;
/// `None` (after a visible skip, or a failure under `BORNE_REQUIRE_PEERS=1`)
/// without `openssl`.
fn certificates(dir: &Path) -> Option<TlsFiles> {
    require_program("openssl", "openssl")?;
    Some(TlsFiles::make(dir).expect("openssl makes the test certificates"))
}

fn database(url: &str, tls: &str, ca_file: Option<&Path>) -> Database {
    validate(
        &RawDatabase {
            url: Some(url.into()),
            tls: Some(tls.into()),
            ca_file: ca_file.map(Path::to_path_buf),
            ..RawDatabase::default()
        },
        None,
    )
    .expect("valid database block")
}

/// Whether this store's connections are encrypted, as the server sees it.
fn encrypted(store: &PostgresStore) -> bool {
    let pool = store.pool().clone();
    store.handle().block_on(async move {
        let c = pool.get().await.expect("connection");
        c.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .expect("pg_stat_ssl")
            .get(0)
    })
}

#[test]
fn tls_modes_against_a_server_with_a_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let Some(files) = certificates(certs.path()) else {
        return;
    };
    let read = |path: &Path| std::fs::read(path).unwrap();
    let Some(pg) = PgCluster::start_with(
        &[
            ("ssl", "on"),
            ("ssl_cert_file", "../server.pem"),
            ("ssl_key_file", "../server.key"),
        ],
        |pg| {
            pg.write_file("server.pem", &read(&files.cert), 0o644);
            pg.write_file("server.key", &read(&files.key), 0o600);
        },
    ) else {
        return;
    };
    let ca = files.ca.as_path();
    let by_name = format!("postgres://borne@localhost:{}/postgres", pg.port());
    let by_ip = pg.url();

    let store = PostgresStore::connect(&database(&by_ip, "require", None), "t").expect("require connects");
    assert!(encrypted(&store), "tls: require must encrypt");

    let store = PostgresStore::connect(&database(&by_name, "verify-full", Some(ca)), "t")
        .expect("verify-full with the right CA and name connects");
    assert!(encrypted(&store));

    let err = PostgresStore::connect(&database(&by_name, "verify-full", None), "t")
        .err()
        .expect("a certificate from an unknown CA is refused")
        .to_string();
    assert!(err.contains("localhost"), "the error names the server: {err}");

    let store = PostgresStore::connect(&database(&by_ip, "disable", None), "t").expect("disable connects");
    assert!(!encrypted(&store), "tls: disable does not encrypt");
}

#[test]
fn tls_require_refuses_a_server_without_tls() {
    let Some(pg) = PgCluster::start() else { return };
    let err = PostgresStore::connect(&database(&pg.url(), "require", None), "t")
        .err()
        .expect("require against a plain server fails")
        .to_string();
    assert!(err.contains("cannot open the state database"), "{err}");
}
