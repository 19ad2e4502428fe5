//! Days of classrooms into report rows: grouped by classroom, school or the
//! whole city, per day, ISO week (from Monday) or month, with the same
//! names in JSON and in CSV columns (nested names joined with `_`).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::DayFigures;

/// `group=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// One row per classroom.
    Classroom,
    /// One row per school.
    School,
    /// One row for everything.
    City,
}

impl Group {
    /// Parses `classroom`, `school` or `city`.
    pub fn parse(s: &str) -> Option<Group> {
        match s {
            "classroom" => Some(Group::Classroom),
            "school" => Some(Group::School),
            "city" => Some(Group::City),
            _ => None,
        }
    }
}

/// `period=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Per day.
    Day,
    /// Per ISO week, starting on Monday.
    Week,
    /// Per calendar month.
    Month,
}

impl Period {
    /// Parses `day`, `week` or `month`.
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    /// The first day of the period holding `d`.
    pub fn start(self, d: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => d,
            Period::Week => d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Period::Month => d.with_day(1).unwrap_or(d),
        }
    }
}

pub use super::counts::{END_REASONS, REFUSAL_CODES};

/// One classroom's day, as the report reads it.
#[derive(Debug, Clone)]
pub struct ClassroomDay {
    /// Local date in the classroom's time zone.
    pub day: NaiveDate,
    /// Its school.
    pub school: String,
    /// The classroom.
    pub classroom: String,
    /// The figures.
    pub figures: DayFigures,
}

/// `on_seconds_by_cause`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ByCause {
    /// Teacher sessions.
    pub teacher: i64,
    /// Schedule mode `on`.
    pub schedule: i64,
    /// Overrides.
    pub r#override: i64,
}

/// `sessions`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sessions {
    /// How many ended.
    pub count: usize,
    /// Their total length in minutes (two decimals).
    pub minutes_total: f64,
    /// The median length in minutes (two decimals); null without sessions.
    pub minutes_median: Option<f64>,
    /// How they ended.
    pub ended_by: BTreeMap<String, u32>,
}

/// `overrides`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Overrides {
    /// How many began.
    pub count: u32,
    /// Time under an override.
    pub seconds: i64,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// School (absent for the city).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    /// Classroom (classroom grouping only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classroom: Option<String>,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Observed on.
    pub on_seconds: i64,
    /// Not known.
    pub unknown_seconds: i64,
    /// Observed on, by what wanted it.
    pub on_seconds_by_cause: ByCause,
    /// Observed on while the schedule said `locked`.
    pub on_outside_school_hours_seconds: i64,
    /// Teacher sessions.
    pub sessions: Sessions,
    /// Overrides.
    pub overrides: Overrides,
    /// Refused teacher requests by code.
    pub refused: BTreeMap<String, u32>,
}

fn minutes(seconds: f64) -> f64 {
    (seconds / 60.0 * 100.0).round() / 100.0
}

impl Row {
    fn new(school: Option<String>, classroom: Option<String>, period_start: NaiveDate, f: &DayFigures) -> Row {
        let mut lengths = f.sessions.clone();
        lengths.sort_unstable();
        let median = match lengths.len() {
            0 => None,
            n if n % 2 == 1 => Some(lengths[n / 2] as f64),
            n => Some((lengths[n / 2 - 1] + lengths[n / 2]) as f64 / 2.0),
        };
        let ended_by = f.ended_by.all();
        let refused = f.refused.all();
        Row {
            school,
            classroom,
            period_start,
            on_seconds: f.on,
            unknown_seconds: f.unknown,
            on_seconds_by_cause: ByCause {
                teacher: f.on_teacher,
                schedule: f.on_schedule,
                r#override: f.on_override,
            },
            on_outside_school_hours_seconds: f.on_outside,
            sessions: Sessions {
                count: f.sessions.len(),
                minutes_total: minutes(f.sessions.iter().sum::<i64>() as f64),
                minutes_median: median.map(minutes),
                ended_by,
            },
            overrides: Overrides {
                count: f.overrides,
                seconds: f.override_seconds,
            },
            refused,
        }
    }
}

/// Sums days of classrooms into rows. Classrooms are named by their
/// position in `order`, the (school, classroom) list in configuration
/// order: rows come in that order, then by period.
pub struct Table<'o> {
    order: &'o [(String, String)],
    group: Group,
    period: Period,
    /// Per position, the rank of its row's group (its own position, its
    /// school's first, or 0 for the city).
    rank: Vec<usize>,
    /// (rank, period start) → (a position of the group, figures).
    acc: BTreeMap<(usize, NaiveDate), (usize, DayFigures)>,
}

impl<'o> Table<'o> {
    /// An empty table.
    pub fn new(order: &'o [(String, String)], group: Group, period: Period) -> Table<'o> {
        let mut first_of_school: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let rank = order
            .iter()
            .enumerate()
            .map(|(i, (school, _))| match group {
                Group::Classroom => i,
                Group::School => *first_of_school.entry(school.as_str()).or_insert(i),
                Group::City => 0,
            })
            .collect();
        Table {
            order,
            group,
            period,
            rank,
            acc: BTreeMap::new(),
        }
    }

    /// Adds the figures of the classroom at `position` on `day`.
    pub fn add(&mut self, day: NaiveDate, position: usize, figures: &DayFigures) {
        let Some(&rank) = self.rank.get(position) else {
            return;
        };
        self.acc
            .entry((rank, self.period.start(day)))
            .or_insert_with(|| (position, DayFigures::default()))
            .1
            .add(figures);
    }

    /// The rows.
    pub fn rows(self) -> Vec<Row> {
        let (order, group) = (self.order, self.group);
        self.acc
            .into_iter()
            .map(|((_, start), (position, f))| {
                let (school, classroom) = &order[position];
                let (school, classroom) = match group {
                    Group::Classroom => (Some(school.clone()), Some(classroom.clone())),
                    Group::School => (Some(school.clone()), None),
                    Group::City => (None, None),
                };
                Row::new(school, classroom, start, &f)
            })
            .collect()
    }
}

/// Groups classroom days into rows. `order` lists (school, classroom) in
/// configuration order: rows come in that order, then by period (days of
/// classrooms not in `order` are left out).
pub fn rows(days: &[ClassroomDay], group: Group, period: Period, order: &[(String, String)]) -> Vec<Row> {
    let position: std::collections::HashMap<(&str, &str), usize> = order
        .iter()
        .enumerate()
        .map(|(i, (s, c))| ((s.as_str(), c.as_str()), i))
        .collect();
    let mut table = Table::new(order, group, period);
    for d in days {
        if let Some(&i) = position.get(&(d.school.as_str(), d.classroom.as_str())) {
            table.add(d.day, i, &d.figures);
        }
    }
    table.rows()
}

/// The CSV header for rows of this grouping.
pub fn csv_header(group: Group) -> Vec<String> {
    let mut h: Vec<String> = Vec::new();
    if group != Group::City {
        h.push("school".into());
    }
    if group == Group::Classroom {
        h.push("classroom".into());
    }
    for c in [
        "period_start",
        "on_seconds",
        "unknown_seconds",
        "on_seconds_by_cause_teacher",
        "on_seconds_by_cause_schedule",
        "on_seconds_by_cause_override",
        "on_outside_school_hours_seconds",
        "sessions_count",
        "sessions_minutes_total",
        "sessions_minutes_median",
    ] {
        h.push(c.into());
    }
    h.extend(END_REASONS.iter().map(|r| format!("sessions_ended_by_{r}")));
    h.push("overrides_count".into());
    h.push("overrides_seconds".into());
    h.extend(REFUSAL_CODES.iter().map(|r| format!("refused_{r}")));
    h
}

/// A row's CSV cells, in [`csv_header`] order (codes outside the fixed
/// lists are left out of CSV; JSON carries them).
pub fn csv_cells(row: &Row, group: Group) -> Vec<String> {
    let mut c: Vec<String> = Vec::new();
    if group != Group::City {
        c.push(row.school.clone().unwrap_or_default());
    }
    if group == Group::Classroom {
        c.push(row.classroom.clone().unwrap_or_default());
    }
    c.push(row.period_start.to_string());
    for v in [
        row.on_seconds,
        row.unknown_seconds,
        row.on_seconds_by_cause.teacher,
        row.on_seconds_by_cause.schedule,
        row.on_seconds_by_cause.r#override,
        row.on_outside_school_hours_seconds,
    ] {
        c.push(v.to_string());
    }
    c.push(row.sessions.count.to_string());
    c.push(row.sessions.minutes_total.to_string());
    c.push(row.sessions.minutes_median.map(|m| m.to_string()).unwrap_or_default());
    for r in END_REASONS {
        c.push(row.sessions.ended_by.get(r).copied().unwrap_or(0).to_string());
    }
    c.push(row.overrides.count.to_string());
    c.push(row.overrides.seconds.to_string());
    for r in REFUSAL_CODES {
        c.push(row.refused.get(r).copied().unwrap_or(0).to_string());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str, school: &str, classroom: &str, on: i64, sessions: Vec<i64>) -> ClassroomDay {
        ClassroomDay {
            day: d.parse().unwrap(),
            school: school.into(),
            classroom: classroom.into(),
            figures: DayFigures {
                on,
                sessions,
                ..Default::default()
            },
        }
    }

    #[test]
    fn groups_by_school_and_week_with_a_median_over_all_sessions() {
        let days = vec![
            day("2026-11-30", "s1", "c1", 100, vec![600]),
            day("2026-12-02", "s1", "c2", 50, vec![1200, 60]),
            day("2026-12-07", "s1", "c1", 7, vec![]),
            day("2026-12-01", "s2", "c3", 1, vec![]),
        ];
        let order = vec![
            ("s1".to_owned(), "c1".to_owned()),
            ("s1".to_owned(), "c2".to_owned()),
            ("s2".to_owned(), "c3".to_owned()),
        ];
        let r = rows(&days, Group::School, Period::Week, &order);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].school.as_deref(), Some("s1"));
        assert_eq!(r[0].period_start.to_string(), "2026-11-30");
        assert_eq!(r[0].on_seconds, 150);
        assert_eq!(r[0].sessions.count, 3);
        assert_eq!(r[0].sessions.minutes_median, Some(10.0));
        assert_eq!(r[0].sessions.minutes_total, 31.0);
        assert_eq!(r[1].period_start.to_string(), "2026-12-07");
        assert_eq!(r[1].sessions.minutes_median, None);
        assert_eq!(r[2].school.as_deref(), Some("s2"));
        let city = rows(&days, Group::City, Period::Month, &order);
        assert_eq!(city.len(), 2);
        assert_eq!(city[0].period_start.to_string(), "2026-11-01");
        assert_eq!(city[1].on_seconds, 58);
        assert_eq!(csv_header(Group::City).len(), csv_cells(&city[0], Group::City).len());
        assert_eq!(
            csv_header(Group::Classroom).len(),
            csv_cells(&rows(&days, Group::Classroom, Period::Day, &order)[0], Group::Classroom).len()
        );
        let json = serde_json::to_value(&city[0]).unwrap();
        assert!(json.get("school").is_none());
        assert_eq!(json["sessions"]["ended_by"]["idle"], 0);
        assert_eq!(json["on_seconds_by_cause"]["override"], 0);
    }
}
