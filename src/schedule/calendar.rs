//! [`Calendar`]: the closed days of one named calendar, each with where it
//! comes from (an ICS event, a public holiday, a local `closed:` date), and
//! its coverage end. Built by the configuration from its sources
//! ([`super::ics`], [`super::public_holidays`], `closed:`); a [`super::Schedule`]
//! receives only the ranges.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveDate;

use super::closed_days::DateRange;

/// Where a closed day comes from, shown by `borne calendar show`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// An event of an iCalendar file: its `SUMMARY`.
    Ics(String),
    /// A computed public holiday: its French name.
    PublicHoliday(&'static str),
    /// A `closed:` date of the configuration.
    Local,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Ics(summary) => write!(f, "ics: {summary}"),
            Origin::PublicHoliday(name) => write!(f, "public holiday: {name}"),
            Origin::Local => f.write_str("local"),
        }
    }
}

/// A range of closed days and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedDays {
    /// The days, inclusive.
    pub range: DateRange,
    /// Where they come from.
    pub origin: Origin,
}

/// The closed days of one calendar, from all its sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    days: Vec<ClosedDays>,
    coverage_end: Option<NaiveDate>,
}

impl Calendar {
    /// A calendar from its closed days. The coverage end is the last closed
    /// day of the ICS events and local dates: public holidays are computed
    /// for every year, so they say nothing about whether the school year's
    /// holidays were entered.
    pub fn new(days: Vec<ClosedDays>) -> Calendar {
        let coverage_end = days
            .iter()
            .filter(|d| !matches!(d.origin, Origin::PublicHoliday(_)))
            .map(|d| d.range.last)
            .max();
        Calendar { days, coverage_end }
    }

    /// Every closed range with its origin, in the order given.
    pub fn days(&self) -> &[ClosedDays] {
        &self.days
    }

    /// The closed ranges alone, for a [`super::Schedule`].
    pub fn ranges(&self) -> impl Iterator<Item = DateRange> + '_ {
        self.days.iter().map(|d| d.range)
    }

    /// The last closed day from ICS events and `closed:` dates, if any.
    pub fn coverage_end(&self) -> Option<NaiveDate> {
        self.coverage_end
    }

    /// Each closed day in `from..=to` with the origins that close it, in
    /// date order (a day closed by several sources lists them all: ICS
    /// events, then public holidays, then local dates).
    pub fn closed_between(&self, from: NaiveDate, to: NaiveDate) -> BTreeMap<NaiveDate, Vec<&Origin>> {
        let mut out: BTreeMap<NaiveDate, Vec<&Origin>> = BTreeMap::new();
        for d in &self.days {
            let first = d.range.first.max(from);
            let last = d.range.last.min(to);
            for day in first.iter_days().take_while(|day| *day <= last) {
                let origins = out.entry(day).or_default();
                if !origins.contains(&&d.origin) {
                    origins.push(&d.origin);
                }
            }
        }
        for origins in out.values_mut() {
            origins.sort();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    fn closed(s: &str, origin: Origin) -> ClosedDays {
        ClosedDays {
            range: range(s),
            origin,
        }
    }

    #[test]
    fn coverage_end_ignores_public_holidays() {
        let c = Calendar::new(vec![
            closed("2026-12-20..2027-01-03", Origin::Ics("Vacances de Noël".into())),
            closed("2027-05-07", Origin::Local),
            closed("2030-12-25", Origin::PublicHoliday("Noël")),
        ]);
        assert_eq!(c.coverage_end(), Some(day("2027-05-07")));
        assert_eq!(
            Calendar::new(vec![closed("2030-12-25", Origin::PublicHoliday("Noël"))]).coverage_end(),
            None
        );
    }

    #[test]
    fn closed_between_lists_each_day_with_every_origin() {
        let c = Calendar::new(vec![
            closed("2026-12-20..2027-01-03", Origin::Ics("Vacances de Noël".into())),
            closed("2026-12-25", Origin::PublicHoliday("Noël")),
        ]);
        let days = c.closed_between(day("2026-12-24"), day("2026-12-26"));
        assert_eq!(days.len(), 3);
        assert_eq!(
            days[&day("2026-12-25")],
            [&Origin::Ics("Vacances de Noël".into()), &Origin::PublicHoliday("Noël")]
        );
        let reversed = Calendar::new(c.days().iter().rev().cloned().collect());
        assert_eq!(
            reversed.closed_between(day("2026-12-25"), day("2026-12-25")),
            c.closed_between(day("2026-12-25"), day("2026-12-25"))
        );
        assert_eq!(days[&day("2026-12-24")].len(), 1);
        assert!(c.closed_between(day("2027-01-04"), day("2027-01-10")).is_empty());
    }
}
