//! The `calendars:` block: each calendar's closed days from its sources
//! (`ics:` file, `url:` copy cached in `state_dir`, `public_holidays:`,
//! `closed:`), its coverage end and, for a URL, its fetch status.
//!
//! Loading never touches the network: a URL calendar is read from its last
//! good copy in `state_dir/calendars/` (the daemon and `borne check --fetch`
//! fetch it). The schedules of classrooms receive the days as ranges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::calendar_cache as cache;
use super::raw::RawCalendar;
use super::{Config, Problem};
use crate::schedule::public_holidays::Region;
use crate::schedule::{Calendar, ClosedDays, DateRange, Origin, Schedule, ics};

/// How many days ahead a used calendar must cover, or `borne check` warns.
pub const COVERAGE_WARNING_DAYS: i64 = 60;

/// Where a calendar's ICS events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSource {
    /// Only `closed:` dates and public holidays.
    Local,
    /// `ics:`: a file read at each load.
    File(PathBuf),
    /// `url:`: fetched by the daemon; the last good copy is read at each load.
    Url {
        /// The address.
        url: String,
        /// The last good copy in `state_dir`.
        copy: PathBuf,
    },
}

impl std::fmt::Display for CalendarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CalendarSource::Local => f.write_str("local"),
            CalendarSource::File(p) => write!(f, "ics:{}", p.display()),
            CalendarSource::Url { url, .. } => write!(f, "url:{url}"),
        }
    }
}

/// One calendar of `calendars:`, resolved.
#[derive(Debug, Clone)]
pub struct NamedCalendar {
    /// Its name.
    pub name: String,
    /// Where its ICS events come from.
    pub source: CalendarSource,
    /// Its closed days, with their origins.
    pub calendar: Calendar,
    /// URL calendars: when the copy in use was fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    /// URL calendars: why the last fetch failed, or why the copy could not
    /// be used (the calendar then holds no ICS day).
    pub error: Option<String>,
    /// Named by a schedule that some classroom uses: its coverage is
    /// checked (school and classroom calendars hold one-off closures).
    pub in_schedule: bool,
}

/// A calendar's status as `/readyz` and the dashboard show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarStatus {
    /// Its last closed day from ICS events and `closed:` dates.
    pub coverage_end: Option<NaiveDate>,
    /// `local`, `ics:PATH` or `url:URL`.
    pub source: String,
    /// URL calendars: when the copy in use was fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    /// URL calendars: the last fetch error.
    pub error: Option<String>,
    /// Whether a schedule in use names it: only those get the coverage
    /// warning (`borne check`, the dashboard); a school's own closures end
    /// when they end.
    pub in_schedule: bool,
}

impl NamedCalendar {
    /// This calendar with its ICS days replaced by `ics` (a new copy of a
    /// URL calendar); its public holidays and local dates stay.
    pub fn with_ics(
        &self,
        ics: Vec<ClosedDays>,
        fetched_at: Option<DateTime<Utc>>,
        error: Option<String>,
    ) -> NamedCalendar {
        let mut days: Vec<ClosedDays> = self
            .calendar
            .days()
            .iter()
            .filter(|d| !matches!(d.origin, Origin::Ics(_)))
            .cloned()
            .collect();
        days.extend(ics);
        NamedCalendar {
            calendar: Calendar::new(days),
            fetched_at,
            error,
            ..self.clone()
        }
    }

    /// Its status for `/readyz` and the dashboard.
    pub fn status(&self) -> CalendarStatus {
        CalendarStatus {
            coverage_end: self.calendar.coverage_end(),
            source: self.source.to_string(),
            fetched_at: self.fetched_at,
            error: self.error.clone(),
            in_schedule: self.in_schedule,
        }
    }
}

/// What [`build`] found: the calendars, and problems with their locations.
pub(super) struct Built {
    pub calendars: BTreeMap<String, Arc<NamedCalendar>>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

fn problem(location: String, message: String, missing_file: bool) -> Problem {
    Problem {
        location,
        message,
        missing_file,
    }
}

/// Resolves every calendar. `tz`: the zone timed ICS events are read in.
pub(super) fn build(raw: &BTreeMap<String, RawCalendar>, base_dir: Option<&Path>, state_dir: &Path, tz: Tz) -> Built {
    let mut out = Built {
        calendars: BTreeMap::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    for (name, c) in raw {
        let loc = format!("calendars.{name}");
        if !super::is_valid_id(name) {
            out.errors.push(problem(
                loc.clone(),
                format!("calendar name \"{name}\" must be 1 to 64 characters among a-z, 0-9 and -"),
                false,
            ));
            continue;
        }
        let mut days = Vec::new();
        let mut local: Vec<(usize, DateRange)> = Vec::new();
        for (i, entry) in c.closed.iter().enumerate() {
            match DateRange::parse(entry) {
                Ok(r) => local.push((i, r)),
                Err(e) => out.errors.push(problem(format!("{loc}.closed[{i}]"), e, false)),
            }
        }
        let mut sorted = local.clone();
        sorted.sort_by_key(|(_, r)| r.first);
        for pair in sorted.windows(2) {
            let ((ia, a), (ib, b)) = (pair[0], pair[1]);
            if b.first <= a.last {
                out.errors.push(problem(
                    format!("{loc}.closed[{}]", ia.max(ib)),
                    format!(
                        "{}..{} overlaps {}..{} (closed[{}]); merge them into one range",
                        b.first,
                        b.last,
                        a.first,
                        a.last,
                        ia.min(ib)
                    ),
                    false,
                ));
            }
        }
        days.extend(local.into_iter().map(|(_, range)| ClosedDays {
            range,
            origin: Origin::Local,
        }));
        if let Some(region) = &c.public_holidays {
            match region.parse::<Region>() {
                Ok(r) => days.extend(r.closed_days()),
                Err(e) => out.errors.push(problem(format!("{loc}.public_holidays"), e, false)),
            }
        }
        let mut fetched_at = None;
        let mut error = None;
        let source = match (&c.ics, &c.url) {
            (Some(_), Some(_)) => {
                out.errors.push(problem(
                    loc.clone(),
                    "give `ics:` (a file) or `url:`, not both".into(),
                    false,
                ));
                CalendarSource::Local
            }
            (Some(path), None) => {
                let path = match base_dir {
                    Some(base) if path.is_relative() => base.join(path),
                    _ => path.clone(),
                };
                match std::fs::read(&path) {
                    Ok(bytes) => match read_ics(&bytes, tz) {
                        Ok(ics) => {
                            for w in ics.warnings {
                                out.warnings.push(problem(format!("{loc}.ics"), w, false));
                            }
                            days.extend(ics.closed);
                        }
                        Err(e) => {
                            out.errors
                                .push(problem(format!("{loc}.ics"), format!("{}: {e}", path.display()), false))
                        }
                    },
                    Err(e) => out.warnings.push(problem(
                        format!("{loc}.ics"),
                        format!("cannot read {}: {e}", path.display()),
                        true,
                    )),
                }
                CalendarSource::File(path)
            }
            (None, Some(url)) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    out.errors.push(problem(
                        format!("{loc}.url"),
                        format!("\"{url}\" is not an http:// or https:// address"),
                        false,
                    ));
                }
                let copy = cache::copy_path(state_dir, name);
                let status = cache::read_status(state_dir, name);
                error = status.error.clone();
                match std::fs::read(&copy) {
                    Ok(bytes) => match read_ics(&bytes, tz) {
                        Ok(ics) => {
                            days.extend(ics.closed);
                            fetched_at = status.fetched_at;
                        }
                        Err(e) => {
                            let why = format!("the copy in {} is not usable: {e}", copy.display());
                            out.warnings.push(problem(format!("{loc}.url"), why.clone(), false));
                            error = Some(why);
                        }
                    },
                    Err(_) => {
                        error.get_or_insert_with(|| "not fetched yet".to_owned());
                    }
                }
                CalendarSource::Url { url: url.clone(), copy }
            }
            (None, None) => CalendarSource::Local,
        };
        out.calendars.insert(
            name.clone(),
            Arc::new(NamedCalendar {
                name: name.clone(),
                source,
                calendar: Calendar::new(days),
                fetched_at,
                error,
                in_schedule: false,
            }),
        );
    }
    out
}

/// Parses an ICS file's bytes (UTF-8, with or without BOM).
///
/// # Errors
/// Not UTF-8, or [`ics::parse`]'s errors.
pub fn read_ics(bytes: &[u8], tz: Tz) -> Result<ics::IcsDays, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text ({e})"))?;
    ics::parse(text, tz)
}

impl Config {
    /// Every calendar's status by name, for `/readyz` and the dashboard.
    pub fn calendar_statuses(&self) -> BTreeMap<&str, CalendarStatus> {
        self.calendars.iter().map(|(n, c)| (n.as_str(), c.status())).collect()
    }

    /// Warnings for calendars of schedules in use whose coverage ends less than
    /// [`COVERAGE_WARNING_DAYS`] after `today`: the school year is not
    /// (or no longer) covered, and holidays would be school days.
    pub fn coverage_warnings(&self, today: NaiveDate) -> Vec<Problem> {
        let limit = today + chrono::Days::new(COVERAGE_WARNING_DAYS.unsigned_abs());
        let mut out = Vec::new();
        for (name, c) in self.calendars.iter().filter(|(_, c)| c.in_schedule) {
            let loc = format!("calendars.{name}");
            match c.calendar.coverage_end() {
                Some(end) if end >= limit => {}
                Some(end) => out.push(problem(
                    loc,
                    format!(
                        "covers school holidays only up to {end}, less than {COVERAGE_WARNING_DAYS} days ahead: add the next school year's calendar"
                    ),
                    false,
                )),
                None => out.push(problem(
                    loc,
                    "has no school holidays (no ICS event, no closed date): add the school year's calendar".into(),
                    false,
                )),
            }
            if let Some(e) = &c.error {
                out.push(problem(
                    format!("calendars.{name}.url"),
                    format!("last fetch: {e}"),
                    false,
                ));
            }
        }
        out
    }

    /// This configuration with calendar `calendar` replaced (a new copy of a
    /// URL calendar): every classroom using it gets a schedule with the new
    /// closed days. Classrooms sharing a schedule and calendars share the
    /// rebuilt schedule too.
    pub fn with_calendar(&self, calendar: NamedCalendar) -> Config {
        let mut next = self.clone();
        let name = calendar.name.clone();
        next.calendars.insert(name.clone(), Arc::new(calendar));
        let calendars = next.calendars.clone();
        let mut rebuilt: BTreeMap<(usize, Vec<String>), Arc<Schedule>> = BTreeMap::new();
        for c in next.classrooms.iter_mut().filter(|c| c.calendars.contains(&name)) {
            let key = (Arc::as_ptr(&c.schedule) as usize, c.calendars.clone());
            let schedule = rebuilt
                .entry(key)
                .or_insert_with(|| {
                    let closed = closed_ranges(&calendars, &c.calendars);
                    Arc::new(Schedule::new(
                        c.schedule.default_mode(),
                        c.schedule.rules().to_vec(),
                        closed,
                    ))
                })
                .clone();
            c.schedule = schedule;
        }
        next
    }
}

/// The closed ranges of the calendars named `names`.
pub(super) fn closed_ranges(calendars: &BTreeMap<String, Arc<NamedCalendar>>, names: &[String]) -> Vec<DateRange> {
    names
        .iter()
        .filter_map(|n| calendars.get(n))
        .flat_map(|c| c.calendar.ranges())
        .collect()
}
