//! `borne calendar show`: the closed days of a calendar between two dates,
//! each with where it comes from.

use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::config::Config;

/// The text `borne calendar show NAME --from FROM --to TO` prints: one line
/// per closed day (`2026-12-25  Fri  ics: Vacances de Noël - Zone A;
/// public holiday: Noël`), then the calendar's source and coverage end.
///
/// # Errors
/// No such calendar (the message lists the known ones), or `to` before `from`.
pub fn calendar_show(config: &Config, name: &str, from: NaiveDate, to: NaiveDate) -> Result<String, String> {
    let Some(c) = config.calendars.get(name) else {
        let known: Vec<&str> = config.calendars.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown calendar \"{name}\"; known: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    if to < from {
        return Err(format!("--to {to} is before --from {from}"));
    }
    let days = c.calendar.closed_between(from, to);
    let mut out = String::new();
    for (day, origins) in &days {
        let why: Vec<String> = origins.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "{day}  {}  {}", day.format("%a"), why.join("; "));
    }
    let _ = writeln!(out, "{} closed day(s) from {from} to {to}", days.len());
    let _ = write!(out, "calendar {name}: source {}", c.source);
    match c.calendar.coverage_end() {
        Some(end) => {
            let _ = write!(out, ", coverage end {end}");
        }
        None => out.push_str(", no coverage (no ICS event, no closed date)"),
    }
    if let Some(at) = c.fetched_at {
        let _ = write!(out, ", fetched {}", at.to_rfc3339());
    }
    if let Some(e) = &c.error {
        let _ = write!(out, ", last fetch error: {e}");
    }
    out.push('\n');
    Ok(out)
}
