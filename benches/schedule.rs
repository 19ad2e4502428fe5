//! Schedule engine benchmark: what the daemon does on each tick
//! (`Core::desired_all`), one `mode_and_next_change` per distinct schedule
//! and time zone, for 10,000 and 100,000 classrooms on a typical French
//! school schedule in Europe/Paris: each with a schedule of its own (the
//! worst case), and 100,000 sharing the three zones' schedules (a city).
//!
//! `cargo bench --bench schedule` runs short criterion groups, then prints one
//! line for scripts:
//!
//! ```text
//! schedule-eval classrooms=10000 total_ms=… per_eval_us=… classrooms_large=100000 total_ms_large=… classrooms_shared=100000 schedules_shared=3 total_ms_shared=… instants=3 reps=5
//! ```
//!
//! `total_ms` is the time to evaluate every classroom once at one instant
//! (median over `reps`, mean over the instants), `per_eval_us` that divided by
//! the number of classrooms. Under `cargo test --benches` (no `--bench` flag)
//! everything runs once on a few hundred classrooms, as a smoke test.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borne::schedule::{Change, CronExpr, DateRange, Mode, Rule, Schedule};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use chrono_tz::Tz;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

const SMALL: usize = 10_000;
const LARGE: usize = 100_000;
const REPS: usize = 5;

fn french_rules() -> Vec<Rule> {
    [
        ("0 8 * * Mon,Tue,Thu,Fri", Mode::Available),
        ("30 11 * * Wed", Mode::Locked),
        ("0 18 * * *", Mode::Locked),
        ("0 10 * * Tue", Mode::On),
        ("0 11 * * Tue", Mode::Available),
    ]
    .into_iter()
    .map(|(at, mode)| Rule {
        at: CronExpr::parse(at).expect("benchmark rule parses"),
        mode,
    })
    .collect()
}

/// 2025-2026 school holidays of French zone `zone` (0 = A, 1 = B, 2 = C),
/// plus the national public holidays as a second, overlapping calendar.
fn holidays(zone: usize) -> Vec<DateRange> {
    let common = [
        "2025-10-18..2025-11-02",
        "2025-12-20..2026-01-04",
        "2026-05-14..2026-05-17",
        "2026-07-04..2026-08-31",
    ];
    let by_zone: [[&str; 2]; 3] = [
        ["2026-02-07..2026-02-22", "2026-04-04..2026-04-19"],
        ["2026-02-14..2026-03-01", "2026-04-11..2026-04-26"],
        ["2026-02-21..2026-03-08", "2026-04-18..2026-05-03"],
    ];
    let public = [
        "2025-11-11",
        "2025-12-25",
        "2026-01-01",
        "2026-04-06",
        "2026-05-01",
        "2026-05-08",
        "2026-05-25",
        "2026-07-14",
    ];
    common
        .iter()
        .chain(&by_zone[zone % 3])
        .chain(&public)
        .map(|s| DateRange::parse(s).expect("benchmark date range parses"))
        .collect()
}

/// One classroom as the daemon holds it: its schedule (an `Arc` shared by
/// every classroom that names it) and its time zone.
type Room = (Arc<Schedule>, Tz);

/// `n` classrooms, cycling through the three holiday zones. `distinct`:
/// one schedule per classroom, built separately (the worst case: nothing
/// shared); otherwise the three zones' schedules shared, as in a city.
fn classrooms(n: usize, distinct: bool) -> Vec<Room> {
    let rules = french_rules();
    let calendars: Vec<Vec<DateRange>> = (0..3).map(holidays).collect();
    let shared: Vec<Arc<Schedule>> = calendars
        .iter()
        .map(|c| Arc::new(Schedule::new(Mode::Locked, rules.clone(), c.clone())))
        .collect();
    (0..n)
        .map(|i| {
            let schedule = if distinct {
                Arc::new(Schedule::new(Mode::Locked, rules.clone(), calendars[i % 3].clone()))
            } else {
                Arc::clone(&shared[i % 3])
            };
            (schedule, Paris)
        })
        .collect()
}

fn paris(s: &str) -> DateTime<Utc> {
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("benchmark time parses");
    Paris
        .from_local_datetime(&local)
        .single()
        .expect("benchmark time exists once in Paris")
        .with_timezone(&Utc)
}

fn instants() -> [(&'static str, DateTime<Utc>); 3] {
    [
        ("tuesday-10h30", paris("2026-03-17 10:30")),
        ("friday-19h00", paris("2026-03-20 19:00")),
        ("holiday", paris("2025-12-23 10:00")),
    ]
}

/// What the daemon does per tick (`Core::desired_all`): one
/// `mode_and_next_change` per distinct (schedule, time zone), then a look-up
/// per classroom.
fn evaluate(rooms: &[Room], t: DateTime<Utc>) -> usize {
    let mut memo: HashMap<(*const Schedule, Tz), (Mode, Option<Change>)> = HashMap::new();
    let mut changes = 0;
    for (schedule, tz) in rooms {
        let (mode, next) = *memo
            .entry((Arc::as_ptr(schedule), *tz))
            .or_insert_with(|| schedule.mode_and_next_change(*tz, black_box(t)));
        black_box(mode);
        changes += usize::from(next.is_some());
    }
    changes
}

fn criterion_groups(c: &mut Criterion, sizes: &[usize]) {
    let single = classrooms(1, true);
    let mut group = c.benchmark_group("schedule/one-classroom");
    for (name, t) in instants() {
        group.bench_with_input(BenchmarkId::from_parameter(name), &t, |b, &t| {
            b.iter(|| evaluate(&single, t))
        });
    }
    group.finish();

    for &n in sizes {
        let rooms = classrooms(n, true);
        let mut group = c.benchmark_group(format!("schedule/{n}-classrooms"));
        group
            .sampling_mode(SamplingMode::Flat)
            .throughput(Throughput::Elements(n as u64));
        if n >= LARGE {
            // Ten samples of one ~0.3 s pass cannot fit in 2 s; criterion
            // would stretch the time anyway, and warn.
            group.measurement_time(Duration::from_secs(4));
        }
        for (name, t) in instants() {
            group.bench_with_input(BenchmarkId::from_parameter(name), &t, |b, &t| {
                b.iter(|| evaluate(&rooms, t))
            });
        }
        group.finish();
    }
}

/// Median over `reps` of the time to evaluate every classroom at `t`.
fn median_run(rooms: &[Room], t: DateTime<Utc>, reps: usize) -> Duration {
    let mut runs: Vec<Duration> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            black_box(evaluate(rooms, t));
            start.elapsed()
        })
        .collect();
    runs.sort();
    runs[runs.len() / 2]
}

/// Mean over the instants of the median time for all of `rooms`, in ms.
fn total_ms(rooms: &[Room], reps: usize) -> f64 {
    let instants = instants();
    let sum: f64 = instants
        .iter()
        .map(|&(_, t)| median_run(rooms, t, reps).as_secs_f64() * 1e3)
        .sum();
    sum / instants.len() as f64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // cargo bench passes --bench; cargo test --benches does not, and criterion
    // then runs each benchmark once: keep that run small too.
    let benchmarking = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let (small, large, reps) = if benchmarking {
        (SMALL, LARGE, REPS)
    } else {
        (100, 300, 1)
    };

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_groups(&mut c, &[small, large]);
    c.final_summary();

    let small_rooms = classrooms(small, true);
    let small_ms = total_ms(&small_rooms, reps);
    drop(small_rooms);
    let large_ms = total_ms(&classrooms(large, true), reps);
    let shared_ms = total_ms(&classrooms(large, false), reps);
    println!(
        "schedule-eval classrooms={small} total_ms={small_ms:.2} per_eval_us={:.3} \
         classrooms_large={large} total_ms_large={large_ms:.1} \
         classrooms_shared={large} schedules_shared=3 total_ms_shared={shared_ms:.2} instants={} reps={reps}",
        small_ms * 1e3 / small as f64,
        instants().len(),
    );
}
