//! URL calendars (issue 15 §1): the fixture served by a loopback HTTP
//! server; success, timeout, too large, garbage, then recovery; the last
//! good copy kept in state_dir; the daemon fetching at start and showing
//! failures in `/readyz` and the metrics; `borne check --fetch`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use borne::calendars::fetch::{self, Limits};
use borne::config::{self, calendar_cache};
use chrono::Utc;
use chrono_tz::Europe::Paris;

const FIXTURE: &str = "tests/data/calendars/zone-a-fixture.ics";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Serve {
    Good,
    Slow,
    Huge,
    Garbage,
}

/// A loopback HTTP server whose answer the test switches; stopped when
/// dropped (its task is aborted).
struct Server {
    url: String,
    serve: Arc<Mutex<Serve>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Server {
        let serve = Arc::new(Mutex::new(Serve::Good));
        let app = Router::new()
            .route("/Zone-A.ics", get(answer))
            .with_state(serve.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/Zone-A.ics", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { url, serve, task }
    }

    fn set(&self, s: Serve) {
        *self.serve.lock().unwrap() = s;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(serve): State<Arc<Mutex<Serve>>>) -> Vec<u8> {
    let mode = *serve.lock().unwrap();
    match mode {
        Serve::Good => std::fs::read(FIXTURE).unwrap(),
        Serve::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            std::fs::read(FIXTURE).unwrap()
        }
        Serve::Huge => vec![b'X'; 6 * 1024 * 1024],
        Serve::Garbage => b"<html><body>502 Bad Gateway</body></html>".to_vec(),
    }
}

fn yaml(url: &str) -> String {
    format!(
        r#"
state_dir: STATE_DIR
calendars:
  zone-a:
    url: {url}
    public_holidays: fr
schedules:
  day:
    calendars: [zone-a]
    rules:
      - {{ at: "30 8 * * Mon-Fri", mode: available }}
      - {{ at: "0 17 * * Mon-Fri", mode: locked }}
schools:
  - id: s1
    schedule: day
    classrooms:
      - id: c1
        access_points: [{{ id: a1, sim: {{}} }}]
users:
  - {{ name: admin, role: admin, token: admin-token-123 }}
demo: true
"#
    )
}

fn coverage(dir: &std::path::Path, url: &str) -> (Option<String>, Option<String>) {
    let c = common::load_config(&yaml(url), dir);
    let cal = &c.calendars["zone-a"];
    (cal.calendar.coverage_end().map(|d| d.to_string()), cal.error.clone())
}

/// Success, timeout, too large, garbage, then recovery: each failure keeps
/// the last good copy (the loader still sees its days) and records why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_calendar_keeps_its_last_good_copy_through_failures() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let short = Limits {
        timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    // Never fetched: no days, and the loader says so without any network.
    assert_eq!(
        coverage(dir.path(), &server.url),
        (None, Some("not fetched yet".into()))
    );

    let days = fetch::refresh(&state, "zone-a", &server.url, Paris, short, Utc::now())
        .await
        .unwrap();
    assert_eq!(days.closed.len(), 13);
    assert_eq!(coverage(dir.path(), &server.url), (Some("2027-08-31".into()), None));
    let fetched_at = calendar_cache::read_status(&state, "zone-a").fetched_at.unwrap();

    for (mode, why) in [
        (Serve::Slow, "timed out after 1 s"),
        (Serve::Huge, "larger than the 5 MiB limit"),
        (Serve::Garbage, "not a usable iCalendar file: not an iCalendar file"),
    ] {
        server.set(mode);
        let err = fetch::refresh(&state, "zone-a", &server.url, Paris, short, Utc::now())
            .await
            .unwrap_err();
        assert!(err.contains(why), "{err}");
        let (end, error) = coverage(dir.path(), &server.url);
        assert_eq!(end.as_deref(), Some("2027-08-31"), "the good copy is kept");
        assert!(error.unwrap().contains(why));
        let status = calendar_cache::read_status(&state, "zone-a");
        assert_eq!(status.fetched_at, Some(fetched_at));
    }

    server.set(Serve::Good);
    fetch::refresh(&state, "zone-a", &server.url, Paris, short, Utc::now())
        .await
        .unwrap();
    assert_eq!(coverage(dir.path(), &server.url), (Some("2027-08-31".into()), None));
    assert!(calendar_cache::read_status(&state, "zone-a").fetched_at.unwrap() > fetched_at);
}

/// The daemon fetches at start: the classroom is locked in the fixture's
/// Christmas holidays and `/readyz` shows when; a failed fetch shows its
/// error in `/readyz` and counts in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_fetches_at_start_and_shows_failures() {
    let server = Server::start().await;
    let clock = common::ManualClock::at("2026-12-22T09:30:00+01:00");
    let d = common::TestDaemon::start(&yaml(&server.url), clock.clone()).await;
    let mut ready = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, body) = d.get("admin-token-123", "/readyz").await;
        if !body["calendars"]["zone-a"]["fetched_at"].is_null() {
            ready = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let zone = &ready["calendars"]["zone-a"];
    assert_eq!(zone["coverage_end"], "2027-08-31", "{ready}");
    assert_eq!(zone["source"], format!("url:{}", server.url));
    assert!(zone["error"].is_null());
    let c = d.core.config();
    let c1 = c.classroom("c1").unwrap();
    let christmas = chrono::DateTime::parse_from_rfc3339("2026-12-22T09:30:00+01:00").unwrap();
    assert_eq!(
        c1.schedule.mode_at(c1.timezone, christmas.with_timezone(&Utc)),
        borne::schedule::Mode::Locked
    );
    let dir = d.stop().await;

    // Restart with the server answering garbage: the copy from the first
    // run is used, the error is shown and counted.
    server.set(Serve::Garbage);
    let d = common::TestDaemon::start_in(dir, &yaml(&server.url), clock).await;
    let mut body = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, b) = d.get("admin-token-123", "/readyz").await;
        if !b["calendars"]["zone-a"]["error"].is_null() {
            body = b;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let zone = &body["calendars"]["zone-a"];
    assert!(
        zone["error"].as_str().unwrap().contains("not a usable iCalendar file"),
        "{body}"
    );
    assert_eq!(zone["coverage_end"], "2027-08-31");
    assert!(!zone["fetched_at"].is_null());
    let metrics = d
        .http
        .get(d.url("/metrics"))
        .bearer_auth("admin-token-123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("borne_calendar_fetch_failures_total{calendar=\"zone-a\"} 1"),
        "{metrics}"
    );
    d.stop().await;
}

/// `borne check` never uses the network; `--fetch` fetches into state_dir.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borne_check_fetches_only_with_fetch() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("borne.yaml");
    let text = yaml(&server.url).replace("STATE_DIR", &dir.path().join("state").display().to_string());
    std::fs::write(&path, text).unwrap();
    let copy = calendar_cache::copy_path(&dir.path().join("state"), "zone-a");
    let run = |args: &'static [&'static str]| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(common::borne_bin())
                .args(args)
                .arg("--config")
                .arg(&path)
                .output()
                .unwrap()
        })
    };
    let out = run(&["check"]).await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not fetched yet"));
    assert!(!copy.exists());
    let out = run(&["check", "--fetch"]).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("fetched calendars.zone-a: 13 closure(s)"), "{stderr}");
    assert!(copy.exists());
    let loaded = config::load(&path).unwrap();
    assert_eq!(
        loaded.config.calendars["zone-a"]
            .calendar
            .coverage_end()
            .map(|d| d.to_string()),
        Some("2027-08-31".into())
    );
}
