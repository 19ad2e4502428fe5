//! `borne report`: the usage report read offline from the state database
//! (read-only, so it works while the daemon runs; PostgreSQL when
//! `database:` is configured), as a table or CSV.

use chrono::{DateTime, NaiveDate, Utc};

use crate::api::csv::{Sep, Writer};
use crate::config::{Classroom, Config};
use crate::report::Source;
use crate::report::table::{self, Group, Period, Row};
use crate::store::Store as _;
use crate::store::postgres::PostgresStore;
use crate::store::usage::ReadOnly;

/// The report's rows for `[from, to]` as of `now`, every classroom.
///
/// # Errors
/// The database cannot be opened or read, or the range is reversed.
pub fn report_rows(
    config: &Config,
    from: NaiveDate,
    to: NaiveDate,
    group: Group,
    period: Period,
    now: DateTime<Utc>,
) -> Result<Vec<Row>, String> {
    if to < from {
        return Err(format!("--to ({to}) is before --from ({from})"));
    }
    let classrooms: Vec<&Classroom> = config.classrooms.iter().collect();
    let report = |r: &dyn Source| crate::report::report(r, &classrooms, (from, to), group, period, now);
    match &config.database {
        Some(database) => {
            // Reads only: nothing is migrated or written.
            let store = PostgresStore::connect(database, "borne-report").map_err(|e| e.to_string())?;
            let mut rows = Err(String::new());
            store.with_usage(&mut |r| rows = report(r)).map_err(|e| e.to_string())?;
            rows
        }
        None => ReadOnly::open(&config.state_dir)?.with(|r| report(r)),
    }
}

/// The rows as CSV (the API's columns) or as a table for a terminal.
pub fn render(rows: &[Row], group: Group, csv: Option<Sep>) -> String {
    if let Some(sep) = csv {
        let header = table::csv_header(group);
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut w = Writer::new(sep, &header);
        for r in rows {
            let cells = table::csv_cells(r, group);
            w.row(cells.iter().map(String::as_str));
        }
        return w.text();
    }
    let hms = |s: i64| format!("{}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60);
    let mut out = format!(
        "{:<10}  {:<24}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>8}  {:>9}  {:>7}\n",
        "period", "group", "on", "teacher", "schedule", "override", "unknown", "sessions", "overrides", "refused"
    );
    for r in rows {
        let name = match (&r.school, &r.classroom) {
            (Some(s), Some(c)) => format!("{s}/{c}"),
            (Some(s), None) => s.clone(),
            _ => "city".to_owned(),
        };
        out.push_str(&format!(
            "{:<10}  {:<24}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>8}  {:>9}  {:>7}\n",
            r.period_start,
            name,
            hms(r.on_seconds),
            hms(r.on_seconds_by_cause.teacher),
            hms(r.on_seconds_by_cause.schedule),
            hms(r.on_seconds_by_cause.r#override),
            hms(r.unknown_seconds),
            r.sessions.count,
            r.overrides.count,
            r.refused.values().sum::<u32>()
        ));
    }
    out
}
