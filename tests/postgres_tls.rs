//! `database.tls` against a real PostgreSQL with TLS on (a throwaway CA
//! and server certificate made with `openssl`): `require` encrypts,
//! `verify-full` checks the chain and the name, `disable` does not
//! encrypt, and `require` refuses a server without TLS.

use std::path::Path;
use std::process::Command;

use borne::config::database::{Database, RawDatabase, validate};
use borne::store::postgres::PostgresStore;
use borne_test_support::peers::require_program;
use borne_test_support::postgres::PgCluster;

/// A CA and a server certificate for `localhost` / 127.0.0.1 signed by it.
fn certificates(dir: &Path) -> Option<()> {
    let openssl = require_program("openssl", "openssl")?;
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=borne test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    ]
    .concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    Some(())
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
    if certificates(certs.path()).is_none() {
        return;
    }
    let read = |name: &str| std::fs::read(certs.path().join(name)).unwrap();
    let Some(pg) = PgCluster::start_with(
        &[
            ("ssl", "on"),
            ("ssl_cert_file", "../server.pem"),
            ("ssl_key_file", "../server.key"),
        ],
        |pg| {
            pg.write_file("server.pem", &read("server.pem"), 0o644);
            pg.write_file("server.key", &read("server.key"), 0o600);
        },
    ) else {
        return;
    };
    let ca = certs.path().join("ca.pem");
    let by_name = format!("postgres://borne@localhost:{}/postgres", pg.port());
    let by_ip = pg.url();

    let store = PostgresStore::connect(&database(&by_ip, "require", None), "t").expect("require connects");
    assert!(encrypted(&store), "tls: require must encrypt");

    let store = PostgresStore::connect(&database(&by_name, "verify-full", Some(&ca)), "t")
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
