//! `borne plan`: what the schedules alone decide, at an instant or over an interval.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::{Classroom, Config};
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

/// Which classrooms `borne plan` shows, and how.
#[derive(Debug, Default, Clone)]
pub struct PlanOptions {
    /// Only the classrooms of these schools (with `classrooms`: either).
    pub schools: Vec<String>,
    /// Only these classrooms.
    pub classrooms: Vec<String>,
    /// Each distinct schedule once, with the classrooms sharing it.
    pub group: bool,
    /// JSON output.
    pub json: bool,
}

/// Classrooms that share one schedule in one time zone: they switch
/// together, so `--group` shows them once.
struct Unit<'a> {
    schedule: &'a str,
    timezone: chrono_tz::Tz,
    classrooms: Vec<&'a Classroom>,
}

/// The classrooms selected by `--school` and `--classroom`, in file order.
fn select<'a>(config: &'a Config, opts: &PlanOptions) -> Result<Vec<&'a Classroom>, String> {
    let unknown: Vec<String> = opts
        .schools
        .iter()
        .filter(|s| config.school(s).is_none())
        .map(|s| format!("unknown school \"{s}\""))
        .chain(
            opts.classrooms
                .iter()
                .filter(|c| config.classroom(c).is_none())
                .map(|c| format!("unknown classroom \"{c}\"")),
        )
        .collect();
    if !unknown.is_empty() {
        return Err(unknown.join("; "));
    }
    let all = opts.schools.is_empty() && opts.classrooms.is_empty();
    Ok(config
        .classrooms
        .iter()
        .filter(|c| {
            all || opts.schools.iter().any(|s| s == c.school.as_str())
                || opts.classrooms.iter().any(|id| id == c.id.as_str())
        })
        .collect())
}

fn units<'a>(classrooms: Vec<&'a Classroom>, group: bool) -> Vec<Unit<'a>> {
    let mut units: Vec<Unit<'a>> = Vec::new();
    for c in classrooms {
        let same = |u: &&mut Unit<'a>| Arc::ptr_eq(&u.classrooms[0].schedule, &c.schedule) && u.timezone == c.timezone;
        match units.iter_mut().find(same) {
            Some(u) if group => u.classrooms.push(c),
            _ => units.push(Unit {
                schedule: &c.schedule_name,
                timezone: c.timezone,
                classrooms: vec![c],
            }),
        }
    }
    units
}

fn ids(classrooms: &[&Classroom]) -> Vec<String> {
    classrooms.iter().map(|c| c.id.to_string()).collect()
}

fn schools(classrooms: &[&Classroom]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in classrooms {
        if !out.iter().any(|s| s == c.school.as_str()) {
            out.push(c.school.to_string());
        }
    }
    out
}

/// A group's name: its schedule's, with its schools when the same schedule
/// makes several groups (a school's own calendars, another time zone).
fn group_label(u: &Unit, all: &[Unit]) -> String {
    if all.iter().filter(|o| o.schedule == u.schedule).count() > 1 {
        format!("{} [{}]", u.schedule, schools(&u.classrooms).join(" "))
    } else {
        u.schedule.to_owned()
    }
}

/// `borne plan --at`: each selected classroom's (or, with `group`, each
/// distinct schedule's) mode and desired state at `at` from the schedule
/// alone, and its next change.
///
/// # Errors
/// An unknown school or classroom.
pub fn plan_at(config: &Config, at: DateTime<Utc>, opts: &PlanOptions) -> Result<String, String> {
    let units = units(select(config, opts)?, opts.group);
    let rows: Vec<(&Unit, PlanRow)> = units
        .iter()
        .map(|u| {
            let c = u.classrooms[0];
            let mode = c.schedule.mode_at(c.timezone, at);
            let row = PlanRow {
                id: c.id.as_str(),
                school: c.school.as_str(),
                mode,
                wifi: wifi_of(mode),
                next_change: c
                    .schedule
                    .next_change(c.timezone, at)
                    .map(|n| PlanChange::new(n, c.timezone)),
            };
            (u, row)
        })
        .collect();
    let at_text = at.with_timezone(&config.timezone).to_rfc3339();
    if opts.json {
        let doc = if opts.group {
            let groups: Vec<_> = rows
                .into_iter()
                .map(|(u, r)| {
                    serde_json::json!({
                        "schedule": u.schedule,
                        "timezone": u.timezone.name(),
                        "schools": schools(&u.classrooms),
                        "classrooms": ids(&u.classrooms),
                        "mode": r.mode,
                        "wifi": r.wifi,
                        "next_change": r.next_change,
                    })
                })
                .collect();
            serde_json::json!({ "at": at_text, "groups": groups })
        } else {
            let rows: Vec<PlanRow> = rows.into_iter().map(|(_, r)| r).collect();
            serde_json::json!({ "at": at_text, "classrooms": rows })
        };
        return Ok(format!("{doc}\n"));
    }
    let mut out = format!("at {at_text}\n");
    let label = |u: &Unit, r: &PlanRow| {
        if opts.group {
            group_label(u, &units)
        } else {
            r.id.to_owned()
        }
    };
    let next_text = |r: &PlanRow| match &r.next_change {
        Some(n) => format!("{} at {}", n.mode, n.at),
        None => "none planned".to_owned(),
    };
    let first = if opts.group { "schedule" } else { "classroom" };
    let width = rows.iter().map(|(u, r)| label(u, r).len()).max().unwrap_or(0).max(9);
    let next_width = if opts.group {
        rows.iter().map(|(_, r)| next_text(r).len()).max().unwrap_or(0)
    } else {
        0
    };
    let _ = write!(
        out,
        "{first:width$}  {:9}  {:4}  {:next_width$}",
        "mode", "wifi", "next change"
    );
    out.push_str(if opts.group { "  classrooms\n" } else { "\n" });
    for (u, r) in &rows {
        let next = next_text(r);
        let _ = write!(
            out,
            "{:width$}  {:9}  {:4}  {next:next_width$}",
            label(u, r),
            r.mode.to_string(),
            r.wifi.as_str()
        );
        if opts.group {
            let _ = write!(out, "  {}: {}", u.classrooms.len(), ids(&u.classrooms).join(", "));
        }
        out.push('\n');
    }
    Ok(out)
}

#[derive(Serialize)]
struct IntervalChange<'a> {
    classroom: &'a str,
    at: String,
    mode: Mode,
    wifi: Wifi,
}

/// `borne plan --from --days`: every mode change in the interval, in
/// order; with `group`, each distinct schedule's changes once.
///
/// # Errors
/// An unknown school or classroom.
pub fn plan_interval(config: &Config, from: DateTime<Utc>, days: u32, opts: &PlanOptions) -> Result<String, String> {
    let to = from + Duration::days(i64::from(days));
    let units = units(select(config, opts)?, opts.group);
    let tz = config.timezone;
    let range = (from.with_timezone(&tz).to_rfc3339(), to.with_timezone(&tz).to_rfc3339());
    if opts.group {
        return Ok(grouped_interval(&units, from, to, &range, opts.json));
    }
    let mut changes: Vec<(DateTime<Utc>, IntervalChange)> = Vec::new();
    for c in units.iter().flat_map(|u| &u.classrooms) {
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
    if opts.json {
        let list: Vec<_> = changes.into_iter().map(|(_, c)| c).collect();
        let doc = serde_json::json!({ "from": range.0, "to": range.1, "changes": list });
        return Ok(format!("{doc}\n"));
    }
    let mut out = format!("{} change(s) from {} to {}\n", changes.len(), range.0, range.1);
    for (_, c) in changes {
        let _ = writeln!(out, "{}  {}  {} (wifi {})", c.at, c.classroom, c.mode, c.wifi.as_str());
    }
    Ok(out)
}

fn grouped_interval(
    units: &[Unit],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    range: &(String, String),
    json: bool,
) -> String {
    let groups: Vec<_> = units
        .iter()
        .map(|u| {
            let changes: Vec<_> = u.classrooms[0]
                .schedule
                .changes(u.timezone, from, to)
                .into_iter()
                .map(|ch| {
                    serde_json::json!({
                        "at": ch.at.with_timezone(&u.timezone).to_rfc3339(),
                        "mode": ch.mode,
                        "wifi": wifi_of(ch.mode),
                    })
                })
                .collect();
            (u, changes)
        })
        .collect();
    if json {
        let list: Vec<_> = groups
            .into_iter()
            .map(|(u, changes)| {
                serde_json::json!({
                    "schedule": u.schedule,
                    "timezone": u.timezone.name(),
                    "schools": schools(&u.classrooms),
                    "classrooms": ids(&u.classrooms),
                    "changes": changes,
                })
            })
            .collect();
        let doc = serde_json::json!({ "from": range.0, "to": range.1, "groups": list });
        return format!("{doc}\n");
    }
    let mut out = format!("{} schedule(s) from {} to {}\n", groups.len(), range.0, range.1);
    for (u, changes) in groups {
        let _ = writeln!(
            out,
            "\n{} ({}), {} classroom(s): {}",
            group_label(u, units),
            u.timezone.name(),
            u.classrooms.len(),
            ids(&u.classrooms).join(", ")
        );
        for ch in &changes {
            let _ = writeln!(
                out,
                "  {}  {} (wifi {})",
                ch["at"].as_str().unwrap_or_default(),
                ch["mode"].as_str().unwrap_or_default(),
                ch["wifi"].as_str().unwrap_or_default()
            );
        }
        if changes.is_empty() {
            out.push_str("  no change\n");
        }
    }
    out
}
