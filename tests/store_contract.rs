//! The `Store` contract, written once and run against both backends: the
//! embedded SQLite file and a real PostgreSQL (a throwaway cluster,
//! tests/support/postgres.rs; skipped with a note when PostgreSQL is not
//! installed, mandatory under `BORNE_REQUIRE_PEERS=1`).
//!
//! Each test gets its own cluster and database, so tests run in parallel
//! and a failure leaves nothing behind.

use std::sync::Arc;

use borne::config::database::{RawDatabase, validate};
use borne::config::{ApId, ClassroomId};
use borne::domain::{ObservedWifi, Wifi};
use borne::policy::{Override, Reason, Session};
use borne::report::DesiredState;
use borne::schedule::Mode;
use borne::store::login_sessions::LoginSession;
use borne::store::postgres::PostgresStore;
use borne::store::sqlite::SqliteStore;
use borne::store::{AuditQuery, AuditRecord, Batch, ObservedRecord, SchoolFilter, Store};
use borne_test_support::postgres::PgCluster;
use chrono::{DateTime, Duration, Utc};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

/// The backends of one test: SQLite always, PostgreSQL when installed.
struct Backends {
    _dir: tempfile::TempDir,
    _pg: Option<PgCluster>,
    stores: Vec<(&'static str, Arc<dyn Store>)>,
    pg: Option<PostgresStore>,
}

fn database(url: &str) -> borne::config::database::Database {
    validate(
        &RawDatabase {
            url: Some(url.into()),
            ..RawDatabase::default()
        },
        None,
    )
    .expect("valid database block")
}

fn backends() -> Backends {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).expect("sqlite"));
    let mut stores = vec![("sqlite", sqlite)];
    let cluster = PgCluster::start();
    let mut pg = None;
    if let Some(cluster) = &cluster {
        let url = cluster.create_database("contract");
        let store = PostgresStore::open(&database(&url), "test-instance").expect("postgres store");
        stores.push(("postgres", Arc::new(store.clone())));
        pg = Some(store);
    }
    Backends {
        _dir: dir,
        _pg: cluster,
        stores,
        pg,
    }
}

fn session(by: &str, until: &str) -> Session {
    Session {
        wifi: Wifi::On,
        started: at("2026-12-01T09:00:00.123Z"),
        until: at(until),
        by: by.into(),
    }
}

fn observed(wifi: ObservedWifi, clients: Option<u32>) -> ObservedRecord {
    ObservedRecord {
        wifi,
        since: at("2026-12-01T09:00:01.5Z"),
        reachable: true,
        last_error: None,
        clients,
        assumed: false,
        last_contact: Some(at("2026-12-01T09:00:02Z")),
    }
}

fn audit(at_: &str, actor: &str, classroom: Option<&str>, action: &str, result: &str) -> AuditRecord {
    AuditRecord {
        at: at(at_),
        actor: actor.into(),
        role: Some("teacher".into()),
        classroom: classroom.map(Into::into),
        access_point: None,
        action: action.into(),
        detail: "d".into(),
        result: result.into(),
        source: Some("127.0.0.1".into()),
        via: Some("token".into()),
    }
}

#[test]
fn committed_state_loads_back_the_same_on_both_backends() {
    let b = backends();
    for (name, store) in &b.stores {
        let c1 = ClassroomId::from("c1");
        let c2 = ClassroomId::from("c2");
        let over = Override {
            wifi: Wifi::Off,
            until: None,
            reason: "exam".into(),
            by: "it".into(),
            set_at: at("2026-12-01T08:00:00Z"),
        };
        // One group commit where later batches overwrite earlier ones, as
        // the writer thread sends them.
        let first = Batch {
            sessions: vec![
                (c1.clone(), Some(session("t1", "2026-12-01T10:00:00Z"))),
                (c2.clone(), Some(session("t2", "2026-12-01T10:00:00Z"))),
            ],
            overrides: vec![(c2.clone(), Some(over.clone()))],
            observed: vec![(ApId::from("a1"), observed(ObservedWifi::Off, None))],
            ..Batch::default()
        };
        let second = Batch {
            sessions: vec![
                (c1.clone(), Some(session("t1b", "2026-12-01T11:00:00Z"))),
                (c2.clone(), None),
            ],
            observed: vec![(ApId::from("a1"), observed(ObservedWifi::On, Some(7)))],
            ..Batch::default()
        };
        store.commit(&[&first, &second]).expect("commit");
        let snap = store.load().expect("load");
        assert_eq!(
            snap.sessions,
            vec![(c1.clone(), session("t1b", "2026-12-01T11:00:00Z"))],
            "{name}"
        );
        assert_eq!(snap.overrides, vec![(c2.clone(), over.clone())], "{name}");
        assert_eq!(
            snap.observed,
            vec![(ApId::from("a1"), observed(ObservedWifi::On, Some(7)))],
            "{name}"
        );
        // Removal on its own.
        store
            .commit(&[&Batch {
                overrides: vec![(c2.clone(), None)],
                ..Batch::default()
            }])
            .expect("commit");
        assert!(store.load().expect("load").overrides.is_empty(), "{name}");
        // Planned overrides: two on one classroom, one cancelled.
        let from = at("2026-12-06T07:00:00Z");
        let later = at("2026-12-13T07:00:00Z");
        let planned = Override {
            until: Some(at("2026-12-06T19:00:00Z")),
            reason: "bureau de vote".into(),
            ..over.clone()
        };
        store
            .commit(&[&Batch {
                planned: vec![
                    (c2.clone(), from, Some(planned.clone())),
                    (c2.clone(), later, Some(planned.clone())),
                ],
                ..Batch::default()
            }])
            .expect("commit");
        store
            .commit(&[&Batch {
                planned: vec![(c2.clone(), later, None)],
                ..Batch::default()
            }])
            .expect("commit");
        let snap = store.load().expect("load");
        assert_eq!(snap.planned.len(), 1, "{name}");
        assert_eq!(snap.planned[0].0, c2, "{name}");
        assert_eq!(snap.planned[0].1.from, from, "{name}");
        assert_eq!(snap.planned[0].1.override_, planned, "{name}");
    }
    let Some(pg) = &b.pg else { return };
    assert_eq!(
        pg.load_classrooms(&[ClassroomId::from("c2")])
            .expect("load_classrooms")
            .planned
            .len(),
        1,
        "a follower adopts planned overrides too"
    );
    let only = pg.load_classrooms(&[ClassroomId::from("c1")]).expect("load_classrooms");
    assert_eq!(only.sessions.len(), 1);
    assert!(
        pg.load_classrooms(&[ClassroomId::from("c9")])
            .expect("none")
            .sessions
            .is_empty()
    );
    assert_eq!(pg.load_observed(&[ApId::from("a1")]).expect("observed").len(), 1);
}

#[test]
fn audit_filters_and_cursor_agree_on_both_backends() {
    let b = backends();
    let mut answers = Vec::new();
    for (name, store) in &b.stores {
        let mut lines = Vec::new();
        for i in 0..30 {
            let classroom = ["c1", "c2", "c_3"][i % 3];
            let action = ["teacher.on", "override.set", "teacher.off"][i % 3];
            let result = if i % 4 == 0 { "refused: locked" } else { "accepted" };
            lines.push(audit(
                &format!("2026-12-01T08:{i:02}:00Z"),
                if i % 2 == 0 { "alice" } else { "bob" },
                Some(classroom),
                action,
                result,
            ));
        }
        let mut school_row = audit("2026-12-01T09:00:00Z", "it", None, "override.set", "accepted");
        school_row.detail = "scope school s1, 2 classrooms: off".into();
        lines.push(school_row);
        store.commit(&[&Batch::audit(lines)]).expect("commit");
        let q = |f: &dyn Fn(&mut AuditQuery)| {
            let mut q = AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            };
            f(&mut q);
            store
                .audit(&q)
                .expect("audit")
                .iter()
                .map(|e| format!("{}|{}|{}", e.record.at, e.record.actor, e.record.action))
                .collect::<Vec<_>>()
        };
        let all = q(&|_| {});
        assert_eq!(all.len(), 31, "{name}");
        let mut results = vec![all];
        results.push(q(&|q| q.classroom = Some("c1".into())));
        results.push(q(&|q| q.actor = Some("bob".into())));
        results.push(q(&|q| {
            q.since = Some(at("2026-12-01T08:10:00Z"));
            q.until = Some(at("2026-12-01T08:20:00Z"));
        }));
        results.push(q(&|q| q.scope = Some(vec!["c2".into(), "c_3".into()])));
        results.push(q(&|q| q.actions = vec!["override.".into()]));
        // `_` is literal, not a wildcard.
        results.push(q(&|q| q.scope = Some(vec!["c_3".into()])));
        results.push(q(&|q| q.actions = vec!["teacher_".into()]));
        results.push(q(&|q| q.result = Some("refused".into())));
        results.push(q(&|q| {
            q.school = Some(SchoolFilter {
                id: "s1".into(),
                classrooms: vec!["c1".into()],
            });
        }));
        assert!(results[7].is_empty(), "{name}: `_` matched as a wildcard");
        assert_eq!(results[9].len(), 11, "{name}: c1 rows and the school's row");
        // Pages of 7 through the cursor give every line once, newest first.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .audit(&AuditQuery {
                    before_id: cursor,
                    limit: 7,
                    ..AuditQuery::default()
                })
                .expect("page");
            if page.is_empty() {
                break;
            }
            assert!(page.windows(2).all(|w| w[0].id > w[1].id), "{name}: newest first");
            cursor = page.last().map(|e| e.id);
            seen.extend(page.into_iter().map(|e| e.record));
        }
        assert_eq!(seen.len(), 31, "{name}");
        assert_eq!(seen.last().map(|r| r.at), Some(at("2026-12-01T08:00:00Z")), "{name}");
        answers.push((name, results));
    }
    if let [(_, a), (_, b)] = answers.as_slice() {
        assert_eq!(a, b, "SQLite and PostgreSQL answer the same audit queries alike");
    }
}

#[test]
fn prune_deletes_old_audit_lines_in_chunks_on_both_backends() {
    let b = backends();
    for (name, store) in &b.stores {
        let t0 = at("2026-01-01T00:00:00Z");
        let lines: Vec<AuditRecord> = (0..25)
            .map(|i| {
                let mut r = audit("2026-01-01T00:00:00Z", "a", Some("c1"), "teacher.on", "accepted");
                r.at = t0 + Duration::minutes(i);
                r
            })
            .collect();
        store.commit(&[&Batch::audit(lines)]).expect("commit");
        let before = t0 + Duration::minutes(20);
        assert_eq!(store.prune_audit(before, 8).expect("prune"), 8, "{name}");
        assert_eq!(store.prune_audit(before, 8).expect("prune"), 8, "{name}");
        assert_eq!(store.prune_audit(before, 8).expect("prune"), 4, "{name}");
        assert_eq!(store.prune_audit(before, 8).expect("prune"), 0, "{name}");
        let left = store
            .audit(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .expect("audit");
        assert_eq!(left.len(), 5, "{name}");
        assert!(left.iter().all(|e| e.record.at >= before), "{name}");
    }
}

#[test]
fn token_uses_keep_the_latest_time_on_both_backends() {
    let b = backends();
    for (name, store) in &b.stores {
        let a = Batch {
            token_use: vec![
                ("aa".into(), at("2026-12-01T10:00:00Z")),
                ("bb".into(), at("2026-12-01T09:00:00Z")),
            ],
            ..Batch::default()
        };
        let older = Batch {
            token_use: vec![("aa".into(), at("2026-12-01T08:00:00Z"))],
            ..Batch::default()
        };
        store.commit(&[&a, &older]).expect("commit");
        store.commit(&[&older]).expect("commit");
        let mut uses = store.token_uses().expect("uses");
        uses.sort();
        assert_eq!(
            uses,
            vec![
                ("aa".into(), at("2026-12-01T10:00:00Z")),
                ("bb".into(), at("2026-12-01T09:00:00Z"))
            ],
            "{name}"
        );
    }
}

const REPORT_CONFIG: &str = "timezone: Europe/Paris
schedules: { day: { default_mode: available } }
schools:
  - id: s1
    schedule: day
    classrooms:
      - { id: c1, access_points: [ { id: c1-ap1, sim: {} }, { id: c1-ap2, sim: {} } ] }
      - { id: c2, access_points: [ { id: c2-ap1, sim: {} } ] }
";

#[test]
fn the_usage_report_gives_the_same_figures_on_both_backends() {
    let b = backends();
    let config = borne::config::from_str(REPORT_CONFIG, "t.yaml", None)
        .expect("config")
        .config;
    let classrooms: Vec<&borne::config::Classroom> = config.classrooms.iter().collect();
    let desired = |wifi, reason| DesiredState {
        mode: Mode::Available,
        wifi,
        reason,
    };
    let mut figures = Vec::new();
    for (name, store) in &b.stores {
        let started = at("2026-11-30T06:00:00.250Z");
        let mut batch = Batch::default();
        batch.usage.run = Some((started, at("2026-12-01T20:00:00Z")));
        for (ap, t, state) in [
            ("c1-ap1", "2026-11-30T06:00:00Z", ObservedWifi::Off),
            ("c1-ap1", "2026-12-01T08:00:00.400Z", ObservedWifi::On),
            ("c1-ap2", "2026-12-01T08:00:01Z", ObservedWifi::On),
            ("c1-ap1", "2026-12-01T09:30:00Z", ObservedWifi::Off),
            ("c1-ap2", "2026-12-01T09:30:00Z", ObservedWifi::Unknown),
            ("c2-ap1", "2026-12-01T10:00:00Z", ObservedWifi::On),
            ("c2-ap1", "2026-12-01T12:00:00Z", ObservedWifi::Off),
        ] {
            batch.usage.ap_history.push((ap.into(), at(t), state));
        }
        for (cl, t, wifi, reason) in [
            ("c1", "2026-11-30T06:00:00Z", Wifi::Off, Reason::Schedule),
            ("c1", "2026-12-01T08:00:00Z", Wifi::On, Reason::Teacher),
            ("c1", "2026-12-01T09:30:00Z", Wifi::Off, Reason::Schedule),
            ("c2", "2026-11-30T06:00:00Z", Wifi::Off, Reason::Schedule),
            ("c2", "2026-12-01T10:00:00Z", Wifi::On, Reason::Override),
            ("c2", "2026-12-01T12:00:00Z", Wifi::Off, Reason::Schedule),
        ] {
            batch
                .usage
                .desired_history
                .push((cl.into(), at(t), desired(wifi, reason)));
        }
        batch.audit = vec![
            audit("2026-12-01T09:30:00Z", "borne", Some("c1"), "session.end", "ok"),
            audit(
                "2026-12-01T07:00:00Z",
                "t1",
                Some("c1"),
                "teacher.on",
                "refused: locked",
            ),
        ];
        batch.audit[0].detail = "idle: no client for 20 minutes".into();
        store.commit(&[&batch]).expect("commit");
        // A stored aggregate for the day before, read back as stored.
        let mut stored = borne::report::DayFigures {
            on: 42,
            sessions: vec![60, 120],
            ..Default::default()
        };
        stored.ended_by.add("idle", 2);
        let mut days = Batch::default();
        days.usage
            .days
            .push(("2026-11-29".parse().unwrap(), "c2".into(), stored));
        store.commit(&[&days]).expect("commit");

        let now = at("2026-12-02T09:00:00Z");
        let mut out = Err(String::new());
        store
            .with_usage(&mut |r| {
                out = borne::report::collect(
                    r,
                    &classrooms,
                    "2026-11-29".parse().unwrap(),
                    "2026-12-02".parse().unwrap(),
                    now,
                );
            })
            .expect("with_usage");
        let mut rows: Vec<String> = out
            .expect("report")
            .iter()
            .map(|d| format!("{} {} {:?}", d.day, d.classroom, d.figures))
            .collect();
        rows.sort();
        assert!(
            rows.iter()
                .any(|r| r.starts_with("2026-12-01 c1") && !r.contains("on: 0,")),
            "{name}: c1 was on on 1 December: {rows:#?}"
        );
        assert!(
            rows.iter()
                .any(|r| r.starts_with("2026-11-29 c2") && r.contains("on: 42")),
            "{name}"
        );
        figures.push(rows);
    }
    if let [a, b] = figures.as_slice() {
        assert_eq!(a, b, "SQLite and PostgreSQL give the same report");
    }
}

#[test]
fn prune_usage_keeps_the_state_that_still_holds_on_both_backends() {
    let b = backends();
    let mut counts = Vec::new();
    for (_, store) in &b.stores {
        let mut batch = Batch::default();
        for i in 0..5 {
            batch.usage.ap_history.push((
                "a1".into(),
                at("2026-01-01T00:00:00Z") + Duration::days(i),
                ObservedWifi::On,
            ));
        }
        batch.usage.run = Some((at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z")));
        store.commit(&[&batch]).expect("commit");
        let n = store
            .prune_usage("2026-01-01".parse().unwrap(), at("2026-01-10T00:00:00Z"))
            .expect("prune");
        counts.push(n);
    }
    assert_eq!(counts[0], 4, "four old rows of a1 go, its last one stays");
    assert!(counts.iter().all(|&n| n == counts[0]), "{counts:?}");
}

#[test]
fn sign_in_sessions_are_stored_and_shared() {
    let b = backends();
    for (name, store) in &b.stores {
        let s = LoginSession {
            id_sha256: [7; 32],
            login: "alice".into(),
            groups: vec!["teachers".into()],
            user: "teacher1".into(),
            csrf: "csrf".into(),
            id_token: None,
            created: at("2026-12-01T08:00:00Z"),
            last_seen: at("2026-12-01T08:00:00Z"),
        };
        let a = store.login_sessions().expect("sessions");
        a.insert(s.clone()).expect("insert");
        let other = store.login_sessions().expect("second opening");
        assert_eq!(other.get(&[7; 32]), Some(s.clone()), "{name}");
        if *name == "postgres" {
            // Another instance signs the person out: this one no longer
            // lets the cookie in.
            other.remove(&[7; 32]).expect("remove");
            assert_eq!(a.get(&[7; 32]), None, "{name}: a session ended elsewhere still opens");
        }
    }
}

#[test]
fn a_postgres_commit_notifies_what_changed_in_its_transaction() {
    let b = backends();
    let Some(pg) = b.pg.clone() else { return };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let (listener, mut messages) = pg.dedicated_connection().await.expect("listen connection");
        listener.batch_execute("LISTEN borne_changes").await.expect("LISTEN");
        let store = pg.clone();
        tokio::task::spawn_blocking(move || {
            // Audit only: no notification.
            store
                .commit(&[&Batch::audit(vec![audit("2026-12-01T08:00:00Z", "a", None, "x", "ok")])])
                .expect("commit");
            store
                .commit(&[&Batch {
                    sessions: vec![(ClassroomId::from("c1"), None)],
                    overrides: vec![(ClassroomId::from("c2"), None)],
                    observed: vec![(ApId::from("a1"), observed(ObservedWifi::On, None))],
                    ..Batch::default()
                }])
                .expect("commit");
        })
        .await
        .expect("commits");
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), messages.recv())
            .await
            .expect("a notification in time")
            .expect("connection open");
        let tokio_postgres::AsyncMessage::Notification(n) = m else {
            panic!("not a notification: {m:?}");
        };
        assert_eq!(n.channel(), "borne_changes");
        let v: serde_json::Value = serde_json::from_str(n.payload()).expect("JSON payload");
        assert_eq!(
            v,
            serde_json::json!({"instance": "test-instance", "classrooms": ["c1", "c2"], "aps": ["a1"]})
        );
        // Nothing else queued: the audit-only commit sent nothing.
        assert!(messages.try_recv().is_err());
    });
}
