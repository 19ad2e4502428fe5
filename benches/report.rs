//! The usage report at city scale, on a real SQLite file:
//!
//! - `report`: 700 classrooms, aggregates stored for every day of a school
//!   year (activity on its 180 school days), the report grouped by school
//!   and week over the whole year — what the dashboard's tab asks.
//! - `aggregate`: one day of histories for 10,000 classrooms (20,000 APs:
//!   every AP switched four times, each classroom's desired state changing
//!   six times), computed and written as that day's aggregates.
//!
//! Run: `cargo bench --bench report`. Prints one summary line starting
//! with `report`; each figure is the median of 5 runs, as wall time and as
//! the thread's CPU time (the same on an idle machine; on a loaded one the
//! wall time also counts the waits for a core).

use std::sync::Arc;
use std::time::Instant;

use borne::config::Classroom;
use borne::domain::ObservedWifi;
use borne::policy::{Reason, Wifi};
use borne::report::{self, DayFigures, DesiredState, Group, Period};
use borne::schedule::Mode;
use borne::store::sqlite::SqliteStore;
use borne::store::{Batch, Store};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

fn config(classrooms: usize, per_school: usize, aps: usize, dir: &std::path::Path) -> borne::config::Config {
    let mut y = format!(
        "timezone: Europe/Paris\nstate_dir: {}\nschedules:\n  day:\n    default_mode: locked\n    rules:\n      - {{ at: \"30 8 * * Mon-Fri\", mode: available }}\n      - {{ at: \"0 17 * * *\", mode: locked }}\nschools:\n",
        dir.display()
    );
    for s in 0..classrooms.div_ceil(per_school) {
        y.push_str(&format!("  - id: s{s}\n    schedule: day\n    classrooms:\n"));
        for c in 0..per_school.min(classrooms - s * per_school) {
            let id = format!("s{s}-c{c}");
            let list: Vec<String> = (0..aps).map(|a| format!("{{ id: {id}-ap{a}, sim: {{}} }}")).collect();
            y.push_str(&format!(
                "      - id: {id}\n        access_points: [ {} ]\n",
                list.join(", ")
            ));
        }
    }
    borne::config::from_str(&y, "bench.yaml", None).expect("config").config
}

/// CPU time of this thread, in ms: on a loaded machine the wall time of a
/// single-threaded step also counts the time other processes had the core.
fn cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime");
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

/// Wall and CPU time of `f`, in ms.
fn timed(f: impl FnOnce()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_ms());
    f();
    (t.elapsed().as_secs_f64() * 1000.0, cpu_ms() - c)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn school_year() -> (NaiveDate, NaiveDate, Vec<NaiveDate>) {
    let from: NaiveDate = "2025-09-01".parse().unwrap();
    let to: NaiveDate = "2026-06-30".parse().unwrap();
    // 180 school days: weekdays but Wednesdays, from the start.
    let mut school = Vec::new();
    let mut d = from;
    while d <= to && school.len() < 180 {
        if !matches!(
            d.weekday(),
            chrono::Weekday::Sat | chrono::Weekday::Sun | chrono::Weekday::Wed
        ) {
            school.push(d);
        }
        d = d.succ_opt().unwrap();
    }
    (from, to, school)
}

fn bench_report() -> Report {
    let dir = tempfile::tempdir().unwrap();
    let config = config(700, 20, 1, dir.path());
    let store = SqliteStore::open(dir.path()).unwrap();
    let (from, to, school) = school_year();
    let mut d = from;
    let mut rows = 0;
    while d <= to {
        let active = school.contains(&d);
        let mut batch = Batch::default();
        for (i, c) in config.classrooms.iter().enumerate() {
            let f = if active {
                DayFigures {
                    on: 3600 + (i as i64 % 7) * 600,
                    on_teacher: 3000,
                    on_schedule: 600 + (i as i64 % 7) * 600,
                    sessions: vec![1800, 1200 + (i as i64 % 5) * 60],
                    ended_by: [("expired", 1), ("teacher", 1)].into(),
                    refused: [("locked", (i % 3) as u32)].into(),
                    ..Default::default()
                }
            } else {
                DayFigures::default()
            };
            batch.usage.days.push((d, c.id.to_string(), f));
            rows += 1;
        }
        store.commit(&[&batch]).unwrap();
        d = d.succ_opt().unwrap();
    }
    // A run covering the year: nothing is unknown for lack of one.
    let mut batch = Batch::default();
    let start: DateTime<Utc> = "2025-08-31T00:00:00Z".parse().unwrap();
    batch.usage.run = Some((start, "2026-07-01T00:00:00Z".parse().unwrap()));
    store.commit(&[&batch]).unwrap();
    let now: DateTime<Utc> = "2026-07-01T12:00:00Z".parse().unwrap();
    let classrooms: Vec<&Classroom> = config.classrooms.iter().collect();
    let (mut wall, mut cpu, mut read) = (Vec::new(), Vec::new(), Vec::new());
    let mut out_rows = 0;
    for _ in 0..5 {
        // The stored days alone, read and decoded: how much of the
        // report is SQLite's.
        let (_, c) = timed(|| {
            let mut n = 0;
            store
                .with_usage(&mut |r| r.each_stored_day(from, to, &mut |_, _, _| n += 1).unwrap())
                .unwrap();
            assert_eq!(n, rows);
        });
        read.push(c);
        let mut got = Vec::new();
        let (w, c) = timed(|| {
            store
                .with_usage(&mut |r| {
                    got = report::report(r, &classrooms, (from, to), Group::School, Period::Week, now).unwrap();
                })
                .unwrap();
        });
        wall.push(w);
        cpu.push(c);
        out_rows = got.len();
    }
    Report {
        wall: median(wall),
        cpu: median(cpu),
        read: median(read),
        stored: rows,
        rows: out_rows,
    }
}

/// The report's figures, in ms (medians of 5 runs).
struct Report {
    wall: f64,
    cpu: f64,
    /// CPU time of reading the stored days alone.
    read: f64,
    stored: usize,
    rows: usize,
}

fn bench_aggregate() -> (f64, f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(10_000, 50, 2, dir.path());
    let store = SqliteStore::open(dir.path()).unwrap();
    let day: NaiveDate = "2026-11-03".parse().unwrap();
    let t0: DateTime<Utc> = "2026-11-02T23:00:00Z".parse().unwrap();
    let at = |h: i64, m: i64| t0 + Duration::hours(h) + Duration::minutes(m);
    let mut batch = Batch::default();
    batch.usage.run = Some((t0 - Duration::days(1), t0 + Duration::days(2)));
    for (i, c) in config.classrooms.iter().enumerate() {
        let m = (i % 50) as i64;
        let d = |mode, wifi, reason| DesiredState { mode, wifi, reason };
        for (t, s) in [
            (t0 - Duration::hours(1), d(Mode::Locked, Wifi::Off, Reason::Locked)),
            (at(8, 30), d(Mode::Available, Wifi::Off, Reason::Schedule)),
            (at(9, m), d(Mode::Available, Wifi::On, Reason::Teacher)),
            (at(10, m), d(Mode::Available, Wifi::Off, Reason::Schedule)),
            (at(14, m), d(Mode::Available, Wifi::On, Reason::Teacher)),
            (at(15, m), d(Mode::Available, Wifi::Off, Reason::Schedule)),
            (at(17, 0), d(Mode::Locked, Wifi::Off, Reason::Locked)),
        ] {
            batch.usage.desired_history.push((c.id.to_string(), t, s));
        }
        for ap in &c.access_points {
            batch
                .usage
                .ap_history
                .push((ap.to_string(), t0 - Duration::hours(1), ObservedWifi::Off));
            for (t, w) in [
                (at(9, m), ObservedWifi::On),
                (at(10, m), ObservedWifi::Off),
                (at(14, m), ObservedWifi::On),
                (at(15, m), ObservedWifi::Off),
            ] {
                batch.usage.ap_history.push((ap.to_string(), t, w));
            }
        }
    }
    store.commit(&[&batch]).unwrap();
    let classrooms: Vec<&Classroom> = config.classrooms.iter().collect();
    let now = t0 + Duration::days(1) + Duration::minutes(5);
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut n = 0;
    for _ in 0..5 {
        let mut days = Vec::new();
        let (w, c) = timed(|| {
            store
                .with_usage(&mut |r| days = report::compute_day(r, &classrooms, day, now).unwrap())
                .unwrap();
            let mut write = Batch::default();
            for d in &days {
                write.usage.days.push((d.day, d.classroom.clone(), d.figures.clone()));
            }
            store.commit(&[&write]).unwrap();
        });
        wall.push(w);
        cpu.push(c);
        n = days.len();
        assert_eq!(days[0].figures.on, 7200, "{:?}", days[0].figures);
    }
    (median(wall), median(cpu), n)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let _ = Arc::new(());
    let r = bench_report();
    let (aggregate_ms, aggregate_cpu, classrooms) = bench_aggregate();
    println!(
        "report 700 classrooms x school year ({} stored days, {} rows by school and week): {:.1} ms wall, {:.1} ms CPU of which {:.1} reading the stored days (target < 200); daily aggregation of {classrooms} classrooms (20,000 APs): {aggregate_ms:.1} ms wall, {aggregate_cpu:.1} ms CPU (target < 1000)",
        r.stored, r.rows, r.wall, r.cpu, r.read
    );
}
