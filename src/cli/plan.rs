//! `borne plan`: what the schedules alone decide, at an instant or over an interval.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::policy::Wifi;
use crate::schedule::{Change, Mode};

/// Wi-Fi state implied by a mode alone (no runtime state).
fn wifi_of(mode: Mode) -> Wifi {
    if mode == Mode::On { Wifi::On } else { Wifi::Off }
}

#[derive(Serialize)]
struct PlanChange {
    at: String,
    mode: Mode,
}

impl PlanChange {
    fn new(c: Change, tz: chrono_tz::Tz) -> Self {
        Self {
            at: c.at.with_timezone(&tz).to_rfc3339(),
            mode: c.mode,
        }
    }
}

#[derive(Serialize)]
struct PlanRow<'a> {
    id: &'a str,
    school: &'a str,
    mode: Mode,
    wifi: Wifi,
    next_change: Option<PlanChange>,
}

/// `borne plan --at`: every classroom's mode and desired state at `at` from
/// the schedule alone, and its next change.
pub fn plan_at(config: &Config, at: DateTime<Utc>, json: bool) -> String {
    let rows: Vec<PlanRow> = config
        .classrooms
        .iter()
        .map(|c| {
            let mode = c.schedule.mode_at(c.timezone, at);
            PlanRow {
                id: c.id.as_str(),
                school: c.school.as_str(),
                mode,
                wifi: wifi_of(mode),
                next_change: c
                    .schedule
                    .next_change(c.timezone, at)
                    .map(|n| PlanChange::new(n, c.timezone)),
            }
        })
        .collect();
    let at_text = at.with_timezone(&config.timezone).to_rfc3339();
    if json {
        let doc = serde_json::json!({ "at": at_text, "classrooms": rows });
        return format!("{doc}\n");
    }
    let mut out = format!("at {at_text}\n");
    let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(0).max(9);
    let _ = writeln!(out, "{:width$}  {:9}  {:4}  next change", "classroom", "mode", "wifi");
    for r in rows {
        let next = match r.next_change {
            Some(n) => format!("{} at {}", n.mode, n.at),
            None => "none planned".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:width$}  {:9}  {:4}  {next}",
            r.id,
            r.mode.to_string(),
            r.wifi.as_str()
        );
    }
    out
}

#[derive(Serialize)]
struct IntervalChange<'a> {
    classroom: &'a str,
    at: String,
    mode: Mode,
    wifi: Wifi,
}

/// `borne plan --from --days`: every mode change in the interval, in order.
///
/// # Errors
/// An unknown `classroom`.
pub fn plan_interval(
    config: &Config,
    from: DateTime<Utc>,
    days: u32,
    classroom: Option<&str>,
    json: bool,
) -> Result<String, String> {
    let to = from + Duration::days(i64::from(days));
    let classrooms: Vec<_> = match classroom {
        Some(id) => vec![
            config
                .classroom(id)
                .ok_or_else(|| format!("unknown classroom \"{id}\""))?,
        ],
        None => config.classrooms.iter().collect(),
    };
    let mut changes: Vec<(DateTime<Utc>, IntervalChange)> = Vec::new();
    for c in classrooms {
        for ch in c.schedule.changes(c.timezone, from, to) {
            changes.push((
                ch.at,
                IntervalChange {
                    classroom: c.id.as_str(),
                    at: ch.at.with_timezone(&c.timezone).to_rfc3339(),
                    mode: ch.mode,
                    wifi: wifi_of(ch.mode),
                },
            ));
        }
    }
    changes.sort_by_key(|a| a.0);
    let tz = config.timezone;
    if json {
        let list: Vec<_> = changes.into_iter().map(|(_, c)| c).collect();
        let doc = serde_json::json!({
            "from": from.with_timezone(&tz).to_rfc3339(),
            "to": to.with_timezone(&tz).to_rfc3339(),
            "changes": list,
        });
        return Ok(format!("{doc}\n"));
    }
    let mut out = format!(
        "{} change(s) from {} to {}\n",
        changes.len(),
        from.with_timezone(&tz).to_rfc3339(),
        to.with_timezone(&tz).to_rfc3339()
    );
    for (_, c) in changes {
        let _ = writeln!(out, "{}  {}  {} (wifi {})", c.at, c.classroom, c.mode, c.wifi.as_str());
    }
    Ok(out)
}
