//! Throw-away TLS certificates for the tests that talk TLS to a real peer
//! (Mosquitto, PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Certificates for a TLS test: a throw-away CA and a server certificate
/// for 127.0.0.1 and `localhost`, made with the `openssl` command.
pub struct TlsFiles {
    /// CA certificate (PEM): what borne's `mqtt.tls.ca_file` or
    /// `database.ca_file` points to.
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Server key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Makes them in `dir`; `None` when `openssl` is missing or fails.
    pub fn make(dir: &Path) -> Option<Self> {
        let run = |args: &[&str]| {
            Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ext = dir.join("san.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .ok()?;
        let ok = run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=borne test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]) && run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]) && run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "san.ext",
        ]);
        // Mosquitto started as root drops to its own user before it loads
        // certificates: let it read these throw-away files.
        use std::os::unix::fs::PermissionsExt as _;
        let readable = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).is_ok();
        let ok = ok
            && readable(dir, 0o755)
            && ["ca.pem", "server.pem", "server.key"]
                .iter()
                .all(|f| readable(&dir.join(f), 0o644));
        ok.then(|| TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        })
    }
}
