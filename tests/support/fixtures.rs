//! The pieces of test configuration several suites share. A test builds its
//! YAML from them (`[HEAD, FAST_RETRIES, SCHOOL_DAY, …].concat()`) and
//! writes out only what is its own: schools, classrooms, access points.

/// Every in-process daemon's first lines: demo mode (no TLS, loopback),
/// Paris time, the state in `STATE_DIR` (replaced by
/// [`load_config`](crate::daemon::load_config)).
pub const HEAD: &str = crate::yaml_head!();

/// [`HEAD`] as a literal, for a test's `const` configuration:
/// `concat!(borne_test_support::yaml_head!(), r#"schools: …"#)`.
#[macro_export]
macro_rules! yaml_head {
    () => {
        "demo: true\ntimezone: Europe/Paris\nstate_dir: STATE_DIR\n"
    };
}

/// A reconciler that retries after a second and never resyncs on its own
/// during a test.
pub const FAST_RETRIES: &str =
    "reconciler: { backoff_initial_seconds: 1, backoff_max_seconds: 1, resync_seconds: 3600 }\n";

/// `schedules:` with `day`; on Tuesday 1 December 2026 in Paris: locked
/// until 08:30, available until 10:00, `on` 10:00–11:00, available until
/// 17:00, locked after. The same file serves `policy`'s unit tests.
pub const SCHOOL_DAY: &str = include_str!("fixtures/school-day.yaml");

/// A whole configuration: two schools on Tuesday 1 December 2026 in Paris,
/// available 08:30-17:00, school s2 on holiday; five users. The same file
/// serves the core's unit tests (`src/core/fixture.rs`).
pub const TWO_SCHOOLS: &str = include_str!("fixtures/two-schools.yaml");

/// `schedules:` with `open`: available all the time (a teacher may switch on).
pub const ALWAYS_AVAILABLE: &str = crate::yaml_always_available!();

/// [`ALWAYS_AVAILABLE`] as a literal, for `concat!` (see [`yaml_head!`]).
#[macro_export]
macro_rules! yaml_always_available {
    () => {
        "schedules:\n  open: { default_mode: available, rules: [] }\n"
    };
}

/// [`ALWAYS_AVAILABLE`] and one school `s1` on it with one classroom `c1`
/// and its simulated AP `c1-ap1` (a test may list more schools after it).
pub const ONE_OPEN_CLASSROOM: &str = crate::yaml_one_open_classroom!();

/// [`ONE_OPEN_CLASSROOM`] as a literal, for `concat!` (see [`yaml_head!`]).
#[macro_export]
macro_rules! yaml_one_open_classroom {
    () => {
        concat!($crate::yaml_always_available!(), $crate::yaml_s1_c1!("open"))
    };
}

/// `schools:` starting with school `s1` on schedule `$schedule` with
/// classroom `c1` and its simulated AP `c1-ap1`; the test's YAML may go on
/// with more classrooms of `s1` (`      - { id: c2, … }`) or more schools
/// (`  - id: s2`).
#[macro_export]
macro_rules! yaml_s1_c1 {
    ($schedule:literal) => {
        concat!(
            "schools:\n  - id: s1\n    schedule: ",
            $schedule,
            "\n    classrooms:\n      - { id: c1, access_points: [ { id: c1-ap1, sim: {} } ] }\n"
        )
    };
}

/// The admin's token in [`users`].
pub const ADMIN_TOKEN: &str = "admin-token-123";
/// The teacher's token in [`users`].
pub const TEACHER_TOKEN: &str = "teacher-token-123";

/// `users:` with `admin` ([`ADMIN_TOKEN`]) and `teacher1`
/// ([`TEACHER_TOKEN`]) limited to `scope`, e.g. `classrooms: [c1]`.
pub fn users(scope: &str) -> String {
    format!(
        "users:\n  - {{ name: admin, role: admin, token: {ADMIN_TOKEN} }}\n  \
         - {{ name: teacher1, role: teacher, {scope}, token: {TEACHER_TOKEN} }}\n"
    )
}
