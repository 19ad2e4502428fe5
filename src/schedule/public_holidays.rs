//! French public holidays, computed rather than typed: the fixed days and
//! the ones that follow Easter (Gregorian computus). `public_holidays: fr`
//! in a calendar adds them; `fr-alsace-moselle` adds Good Friday and
//! 26 December, which are public holidays there.

use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveDate};

use super::calendar::{ClosedDays, Origin};
use super::closed_days::DateRange;

/// The years public holidays are computed for: enough for any school year
/// a configuration can describe, and few enough to stay small (11 days a
/// year).
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

/// A set of public holidays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Metropolitan France.
    Fr,
    /// Alsace and Moselle: metropolitan France plus Good Friday and 26 December.
    FrAlsaceMoselle,
}

impl Region {
    /// The name used in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Region::Fr => "fr",
            Region::FrAlsaceMoselle => "fr-alsace-moselle",
        }
    }

    /// The public holidays of `year`, in date order, with their French names.
    pub fn holidays(self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let fixed = |m, d| NaiveDate::from_ymd_opt(year, m, d);
        let easter = easter_sunday(year);
        let after_easter = |n: u64| easter.and_then(|e| e.checked_add_days(Days::new(n)));
        let mut out: Vec<(Option<NaiveDate>, &'static str)> = vec![
            (fixed(1, 1), "Jour de l'an"),
            (after_easter(1), "Lundi de Pâques"),
            (fixed(5, 1), "Fête du Travail"),
            (fixed(5, 8), "Victoire 1945"),
            (after_easter(39), "Ascension"),
            (after_easter(50), "Lundi de Pentecôte"),
            (fixed(7, 14), "Fête nationale"),
            (fixed(8, 15), "Assomption"),
            (fixed(11, 1), "Toussaint"),
            (fixed(11, 11), "Armistice 1918"),
            (fixed(12, 25), "Noël"),
        ];
        if self == Region::FrAlsaceMoselle {
            out.push((easter.and_then(|e| e.checked_sub_days(Days::new(2))), "Vendredi saint"));
            out.push((fixed(12, 26), "Saint-Étienne"));
        }
        let mut days: Vec<(NaiveDate, &'static str)> = out.into_iter().filter_map(|(d, n)| Some((d?, n))).collect();
        days.sort();
        days
    }

    /// The public holidays of every year in [`YEARS`] as closed days.
    pub fn closed_days(self) -> Vec<ClosedDays> {
        YEARS
            .flat_map(|y| self.holidays(y))
            .map(|(d, name)| ClosedDays {
                range: DateRange { first: d, last: d },
                origin: Origin::PublicHoliday(name),
            })
            .collect()
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = String;

    fn from_str(s: &str) -> Result<Region, String> {
        match s {
            "fr" => Ok(Region::Fr),
            "fr-alsace-moselle" => Ok(Region::FrAlsaceMoselle),
            _ => Err(format!("unknown public holidays \"{s}\"; use fr or fr-alsace-moselle")),
        }
    }
}

/// Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm,
/// "Meeus/Jones/Butcher"). `None` only outside chrono's range.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::day;
    use super::*;

    /// Easter Sundays checked by hand against the published dates (the
    /// liturgical calendars of the Conférence des évêques de France), and
    /// the dates that follow from them.
    const TABLE: [(i32, &str, &str, &str, &str); 6] = [
        // year, Easter Sunday, Easter Monday, Ascension, Whit Monday
        (2025, "2025-04-20", "2025-04-21", "2025-05-29", "2025-06-09"),
        (2026, "2026-04-05", "2026-04-06", "2026-05-14", "2026-05-25"),
        (2027, "2027-03-28", "2027-03-29", "2027-05-06", "2027-05-17"),
        (2028, "2028-04-16", "2028-04-17", "2028-05-25", "2028-06-05"),
        (2029, "2029-04-01", "2029-04-02", "2029-05-10", "2029-05-21"),
        (2030, "2030-04-21", "2030-04-22", "2030-05-30", "2030-06-10"),
    ];

    #[test]
    fn easter_and_the_moveable_holidays_match_the_table_2025_2030() {
        for (year, easter, monday, ascension, whit) in TABLE {
            assert_eq!(easter_sunday(year), Some(day(easter)), "{year}");
            let h = Region::Fr.holidays(year);
            assert_eq!(h.len(), 11, "{year}");
            for (date, name) in [
                (monday, "Lundi de Pâques"),
                (ascension, "Ascension"),
                (whit, "Lundi de Pentecôte"),
            ] {
                assert!(h.contains(&(day(date), name)), "{year} {name} {date}: {h:?}");
            }
            for fixed in ["01-01", "05-01", "05-08", "07-14", "08-15", "11-01", "11-11", "12-25"] {
                let d = day(&format!("{year}-{fixed}"));
                assert!(h.iter().any(|(x, _)| *x == d), "{year}-{fixed}");
            }
        }
    }

    #[test]
    fn alsace_moselle_adds_good_friday_and_saint_stephen() {
        let h = Region::FrAlsaceMoselle.holidays(2027);
        assert_eq!(h.len(), 13);
        assert!(h.contains(&(day("2027-03-26"), "Vendredi saint")));
        assert!(h.contains(&(day("2027-12-26"), "Saint-Étienne")));
        assert!(!Region::Fr.holidays(2027).iter().any(|(d, _)| *d == day("2027-03-26")));
    }

    #[test]
    fn easter_is_always_between_22_march_and_25_april() {
        for year in YEARS {
            let e = easter_sunday(year).unwrap();
            assert!(
                e >= day(&format!("{year}-03-22")) && e <= day(&format!("{year}-04-25")),
                "{e}"
            );
            assert_eq!(chrono::Datelike::weekday(&e), chrono::Weekday::Sun, "{e}");
        }
    }

    #[test]
    fn regions_parse_by_their_configuration_names() {
        assert_eq!("fr".parse::<Region>(), Ok(Region::Fr));
        assert_eq!("fr-alsace-moselle".parse::<Region>(), Ok(Region::FrAlsaceMoselle));
        assert_eq!(
            "de".parse::<Region>().unwrap_err(),
            r#"unknown public holidays "de"; use fr or fr-alsace-moselle"#
        );
    }
}
