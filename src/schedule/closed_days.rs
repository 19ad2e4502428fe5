//! [`DateRange`]: the closed days (holidays) of a schedule, from its
//! calendars, as inclusive ranges of local days; merging them, and the
//! instant a closed day starts.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::wall_clock::resolve_local;

/// An inclusive range of local calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// First day of the range.
    pub first: NaiveDate,
    /// Last day of the range (inclusive).
    pub last: NaiveDate,
}

impl DateRange {
    /// Parses `2025-12-20..2026-01-04` (inclusive) or a single day
    /// `2026-05-15`. A range whose last day is before its first is an error.
    pub fn parse(s: &str) -> Result<DateRange, String> {
        let text = s.trim();
        let day = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .map_err(|_| format!("bad date {:?} in {text:?}: expected YYYY-MM-DD", d.trim()))
        };
        let range = match text.split_once("..") {
            Some((a, b)) => DateRange {
                first: day(a)?,
                last: day(b)?,
            },
            None => {
                let d = day(text)?;
                DateRange { first: d, last: d }
            }
        };
        if range.last < range.first {
            return Err(format!(
                "date range {text:?} is reversed: {} is before {}",
                range.last, range.first
            ));
        }
        Ok(range)
    }

    /// Whether `day` is in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first <= day && day <= self.last
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

impl FromStr for DateRange {
    type Err = String;

    /// Same as [`DateRange::parse`].
    fn from_str(s: &str) -> Result<DateRange, String> {
        DateRange::parse(s)
    }
}

/// Sorts and merges overlapping or adjacent ranges, so that the day after a
/// merged range is never closed.
pub(super) fn merge_ranges(mut ranges: Vec<DateRange>) -> Vec<DateRange> {
    ranges.sort_by_key(|r| (r.first, r.last));
    let mut out: Vec<DateRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(prev) if prev.last.succ_opt().is_none_or(|next| r.first <= next) => {
                prev.last = prev.last.max(r.last);
            }
            _ => out.push(r),
        }
    }
    out
}

/// The instant local day `day` starts (a nonexistent midnight → the gap's end).
pub(super) fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    resolve_local(tz, day.and_time(NaiveTime::MIN))
}
#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Mode, Schedule};
    use super::*;

    // ---- date ranges ------------------------------------------------------

    #[test]
    fn date_ranges_parse_as_ranges_or_single_days() {
        assert_eq!(
            range("2025-12-20..2026-01-04"),
            DateRange {
                first: day("2025-12-20"),
                last: day("2026-01-04")
            }
        );
        assert_eq!(
            range(" 2026-05-15 "),
            DateRange {
                first: day("2026-05-15"),
                last: day("2026-05-15")
            }
        );
        assert_eq!(range("2026-05-15").to_string(), "2026-05-15");
        assert_eq!(range("2025-12-20..2026-01-04").to_string(), "2025-12-20..2026-01-04");
        assert!(range("2025-12-20..2026-01-04").contains(day("2026-01-01")));
        assert!(!range("2025-12-20..2026-01-04").contains(day("2026-01-05")));
    }

    #[test]
    fn bad_date_ranges_give_clear_errors() {
        assert_eq!(
            DateRange::parse("2026-01-04..2025-12-20").unwrap_err(),
            r#"date range "2026-01-04..2025-12-20" is reversed: 2025-12-20 is before 2026-01-04"#
        );
        assert_eq!(
            DateRange::parse("2026-02-30").unwrap_err(),
            r#"bad date "2026-02-30" in "2026-02-30": expected YYYY-MM-DD"#
        );
        for bad in [
            "",
            "2026-05",
            "2026-05-15..",
            "..2026-05-15",
            "15/05/2026",
            "2026-05-15...2026-05-16",
        ] {
            assert!(DateRange::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn overlapping_and_adjacent_calendars_are_merged() {
        let s = Schedule::new(
            Mode::Locked,
            vec![],
            vec![
                range("2026-05-01"),
                range("2026-04-18..2026-05-03"),
                range("2026-05-04..2026-05-05"),
                range("2026-05-08"),
                range("2026-05-07"),
                range("2026-06-01"),
            ],
        );
        assert_eq!(
            s.closed_days(),
            [
                range("2026-04-18..2026-05-05"),
                range("2026-05-07..2026-05-08"),
                range("2026-06-01"),
            ]
        );
    }
}
