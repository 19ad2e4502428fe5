//! An iCalendar (RFC 5545) file → closed days, read the way the Ministry of
//! Education's school calendars mean their events.
//!
//! The official files (one per zone) hold all-day events such as
//! `DTSTART;VALUE=DATE:20261017`, `DTEND;VALUE=DATE:20261102`,
//! `SUMMARY:Vacances de la Toussaint - Zone A`: classes end **after class**
//! on the start day (still a school day) and resume **on the morning** of
//! the end day (`DTEND` is exclusive, and a school day). So such an event
//! closes the days strictly between its start and its end. Hence:
//!
//! - **all-day events** close `DTSTART + 1 ..= DTEND − 1`;
//! - **timed events** (`DTSTART:20261017T120000`, with `TZID`, `Z` or
//!   floating) close the local days they cover entirely, in the
//!   calendar's time zone;
//! - **an event without an end** (the official file's start of the summer
//!   holidays) closes every day up to the day before the next event of the
//!   same file whose summary starts with "Rentrée scolaire des élèves", or
//!   up to 31 August when there is none;
//! - **"Rentrée …" events** mark days when classes start: they close nothing;
//! - `DURATION` gives the end when `DTEND` is absent; `STATUS:CANCELLED`
//!   events are skipped;
//! - **repeating events** (`RRULE`, `RDATE`) are **rejected** with an error:
//!   the official files have none, and expanding a rule into school
//!   holidays would guess at dates the Ministry did not publish.
//!
//! Parsing (line unfolding, components, properties) is the `icalendar`
//! crate's; this module gives the events their meaning.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::parser::{Component, Property, read_calendar, unfold};

use super::calendar::{ClosedDays, Origin};
use super::closed_days::DateRange;

/// The closed days read from one file, and what looked odd in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IcsDays {
    /// The closures, in file order.
    pub closed: Vec<ClosedDays>,
    /// Events that close no day (e.g. an all-day event one day long: it
    /// ends the morning after the day it starts, after class).
    pub warnings: Vec<String>,
}

/// A start or an end as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// `VALUE=DATE`: a whole day.
    Day(NaiveDate),
    /// A time, already in the calendar's time zone.
    Time(NaiveDateTime),
}

impl When {
    fn date(self) -> NaiveDate {
        match self {
            When::Day(d) => d,
            When::Time(t) => t.date(),
        }
    }

    /// First day closed by an event starting here: the next day for a
    /// date (classes end after class that day), and for a time, the first
    /// day it covers from midnight.
    fn first_closed(self) -> Option<NaiveDate> {
        match self {
            When::Day(d) => d.succ_opt(),
            When::Time(t) if t.time() == NaiveTime::MIN => Some(t.date()),
            When::Time(t) => t.date().succ_opt(),
        }
    }

    /// Last day closed by an event ending here: the day before (classes
    /// resume that morning; an end at a time leaves that day open too).
    fn last_closed(self) -> Option<NaiveDate> {
        self.date().pred_opt()
    }
}

struct Event {
    summary: String,
    start: When,
    end: Option<When>,
}

/// Reads the closed days of an iCalendar text. `tz`: the time zone that
/// timed events in UTC or without a zone are read in (the configuration's).
///
/// # Errors
/// A sentence naming the problem: the text is not iCalendar, an event has
/// no or a bad `DTSTART`, a bad `DTEND`/`DURATION`, an unknown `TZID`, or
/// repeats (`RRULE`/`RDATE`).
pub fn parse(text: &str, tz: Tz) -> Result<IcsDays, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().starts_with("BEGIN:VCALENDAR") {
        return Err("not an iCalendar file: it does not start with BEGIN:VCALENDAR".into());
    }
    let unfolded = unfold(text);
    let calendar = read_calendar(&unfolded).map_err(|e| {
        let first = e.lines().take(3).collect::<Vec<_>>().join(" ");
        format!("not a valid iCalendar file: {first}")
    })?;
    let mut events = Vec::new();
    for c in calendar.components.iter().filter(|c| c.name.as_str() == "VEVENT") {
        if let Some(e) = event(c, tz)? {
            events.push(e);
        }
    }
    let rentrees: Vec<NaiveDate> = events
        .iter()
        .filter(|e| is_rentree_des_eleves(&e.summary))
        .map(|e| e.start.date())
        .collect();
    let mut out = IcsDays::default();
    for e in &events {
        if starts_classes(&e.summary) {
            continue;
        }
        let first = e.start.first_closed();
        let last = match e.end {
            Some(end) => end.last_closed(),
            None => {
                let start = e.start.date();
                match rentrees.iter().filter(|r| **r > start).min() {
                    Some(r) => r.pred_opt(),
                    None => {
                        let year = if (start.month(), start.day()) <= (8, 31) {
                            start.year()
                        } else {
                            start.year() + 1
                        };
                        NaiveDate::from_ymd_opt(year, 8, 31)
                    }
                }
            }
        };
        match (first, last) {
            (Some(first), Some(last)) if first <= last => out.closed.push(ClosedDays {
                range: DateRange { first, last },
                origin: Origin::Ics(e.summary.clone()),
            }),
            _ => out.warnings.push(format!(
                "event \"{}\" starting {} closes no day (classes end after class on its first day and resume on the morning of its end)",
                e.summary,
                e.start.date()
            )),
        }
    }
    Ok(out)
}

/// "Rentrée scolaire des élèves", "Rentrée scolaire des enseignants": days
/// classes (or teachers) start, not closures.
fn starts_classes(summary: &str) -> bool {
    summary.trim_start().to_lowercase().starts_with("rentrée")
}

fn is_rentree_des_eleves(summary: &str) -> bool {
    summary
        .trim_start()
        .to_lowercase()
        .starts_with("rentrée scolaire des élèves")
}

fn event(c: &Component<'_>, tz: Tz) -> Result<Option<Event>, String> {
    let summary = c
        .find_prop("SUMMARY")
        .map(|p| p.val.clone().unescape_text().as_str().trim().to_owned())
        .unwrap_or_else(|| "(no summary)".to_owned());
    if c.find_prop("STATUS")
        .is_some_and(|p| p.val.as_str().eq_ignore_ascii_case("CANCELLED"))
    {
        return Ok(None);
    }
    for repeating in ["RRULE", "RDATE"] {
        if c.find_prop(repeating).is_some() {
            return Err(format!(
                "event \"{summary}\" repeats ({repeating}): repeating events are not supported; list each closure as its own event"
            ));
        }
    }
    let Some(dtstart) = c.find_prop("DTSTART") else {
        return Err(format!("event \"{summary}\" has no DTSTART"));
    };
    let start = when(dtstart, tz).map_err(|e| format!("event \"{summary}\": DTSTART {e}"))?;
    let end = match (c.find_prop("DTEND"), c.find_prop("DURATION")) {
        (Some(p), _) => Some(when(p, tz).map_err(|e| format!("event \"{summary}\": DTEND {e}"))?),
        (None, Some(p)) => {
            let d = duration(p.val.as_str())
                .ok_or_else(|| format!("event \"{summary}\": DURATION \"{}\" is not understood", p.val.as_str()))?;
            Some(match start {
                When::Day(day) => When::Day(
                    day.checked_add_days(Days::new(u64::try_from(d.num_days()).unwrap_or(0)))
                        .ok_or_else(|| format!("event \"{summary}\": DURATION out of range"))?,
                ),
                When::Time(t) => When::Time(
                    t.checked_add_signed(d)
                        .ok_or_else(|| format!("event \"{summary}\": DURATION out of range"))?,
                ),
            })
        }
        (None, None) => None,
    };
    if let Some(end) = end
        && end.date() < start.date()
    {
        return Err(format!(
            "event \"{summary}\" ends ({}) before it starts ({})",
            end.date(),
            start.date()
        ));
    }
    Ok(Some(Event { summary, start, end }))
}

/// A `DTSTART`/`DTEND` value: `YYYYMMDD` (a day), `YYYYMMDDTHHMMSS`
/// (floating, or in its `TZID`) or `…Z` (UTC); times are converted to `tz`
/// unless floating.
fn when(p: &Property<'_>, tz: Tz) -> Result<When, String> {
    let value = p.val.as_str().trim();
    let param = |key: &str| {
        p.params
            .iter()
            .find(|x| x.key.as_str().eq_ignore_ascii_case(key))
            .and_then(|x| x.val.as_ref())
            .map(|v| v.as_str().trim_matches('"').to_owned())
    };
    let is_date = param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.len() == 8;
    if is_date {
        return NaiveDate::parse_from_str(value, "%Y%m%d")
            .map(When::Day)
            .map_err(|_| format!("\"{value}\" is not a date YYYYMMDD"));
    }
    let (text, utc) = match value.strip_suffix('Z') {
        Some(t) => (t, true),
        None => (value, false),
    };
    let naive = NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%S")
        .map_err(|_| format!("\"{value}\" is not a date-time YYYYMMDDTHHMMSS"))?;
    let instant: Option<DateTime<Utc>> = if utc {
        Some(naive.and_utc())
    } else if let Some(zone) = param("TZID") {
        let zone: Tz = zone
            .parse()
            .map_err(|_| format!("has an unknown TZID \"{zone}\"; use an IANA name such as Europe/Paris"))?;
        Some(
            zone.from_local_datetime(&naive)
                .earliest()
                .or_else(|| zone.from_local_datetime(&(naive + TimeDelta::hours(1))).earliest())
                .ok_or_else(|| format!("\"{value}\" does not exist in {zone}"))?
                .with_timezone(&Utc),
        )
    } else {
        None
    };
    Ok(When::Time(match instant {
        Some(i) => i.with_timezone(&tz).naive_local(),
        None => naive,
    }))
}

/// An RFC 5545 duration of days, weeks, hours, minutes and seconds
/// (`P2D`, `P1W`, `PT12H`, `P1DT6H`); `None` when not understood.
fn duration(s: &str) -> Option<TimeDelta> {
    let body = s.trim().strip_prefix('+').unwrap_or(s.trim()).strip_prefix('P')?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let mut total = TimeDelta::zero();
    let mut take = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut n = String::new();
        for ch in part.chars() {
            if ch.is_ascii_digit() {
                n.push(ch);
            } else {
                let secs = units.iter().find(|(u, _)| *u == ch)?.1;
                total += TimeDelta::seconds(n.parse::<i64>().ok()?.checked_mul(secs)?);
                n.clear();
            }
        }
        n.is_empty().then_some(())
    };
    take(date, &[('W', 7 * 86_400), ('D', 86_400)])?;
    if let Some(t) = time {
        take(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    (total > TimeDelta::zero()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::range;
    use super::*;
    use chrono_tz::Europe::Paris;

    fn cal(events: &[&str]) -> String {
        let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//borne//FR\r\n");
        for e in events {
            s.push_str("BEGIN:VEVENT\r\n");
            for line in e.lines() {
                s.push_str(line.trim());
                s.push_str("\r\n");
            }
            s.push_str("END:VEVENT\r\n");
        }
        s.push_str("END:VCALENDAR\r\n");
        s
    }

    fn closed(text: &str) -> Vec<(String, String)> {
        parse(text, Paris)
            .unwrap_or_else(|e| panic!("{e}"))
            .closed
            .into_iter()
            .map(|c| (c.range.to_string(), c.origin.to_string()))
            .collect()
    }

    fn one(range_text: &str, summary: &str) -> Vec<(String, String)> {
        vec![(range(range_text).to_string(), format!("ics: {summary}"))]
    }

    #[test]
    fn an_all_day_holiday_closes_the_days_between_after_class_and_the_morning_it_ends() {
        let text =
            cal(&["DTSTART;VALUE=DATE:20261017\nDTEND;VALUE=DATE:20261102\nSUMMARY:Vacances de la Toussaint - Zone A"]);
        // Saturday 17 October is still a school day, Monday 2 November too.
        assert_eq!(
            closed(&text),
            one("2026-10-18..2026-11-01", "Vacances de la Toussaint - Zone A")
        );
    }

    #[test]
    fn the_ascension_bridge_is_read_the_same_way() {
        let text =
            cal(&["DTSTART;VALUE=DATE:20270505\nDTEND;VALUE=DATE:20270510\nSUMMARY:Pont de l'Ascension - Zone A"]);
        assert_eq!(
            closed(&text),
            one("2027-05-06..2027-05-09", "Pont de l'Ascension - Zone A")
        );
    }

    #[test]
    fn an_event_without_end_closes_up_to_the_next_rentree_des_eleves() {
        let text = cal(&[
            "DTSTART;VALUE=DATE:20260704\nSUMMARY:Vacances d'Été - Zone A",
            "DTSTART;VALUE=DATE:20260901\nSUMMARY:Rentrée scolaire des élèves - Zone A",
            "DTSTART;VALUE=DATE:20270703\nSUMMARY:Vacances d'Été - Zone A",
        ]);
        assert_eq!(
            closed(&text),
            [
                (
                    "2026-07-05..2026-08-31".to_owned(),
                    "ics: Vacances d'Été - Zone A".to_owned()
                ),
                (
                    "2027-07-04..2027-08-31".to_owned(),
                    "ics: Vacances d'Été - Zone A".to_owned()
                ),
            ]
        );
        // A Rentrée on 2 September leaves 1 September closed.
        let later = cal(&[
            "DTSTART;VALUE=DATE:20270703\nSUMMARY:Vacances d'Été",
            "DTSTART;VALUE=DATE:20270902\nSUMMARY:Rentrée scolaire des élèves",
        ]);
        assert_eq!(closed(&later), one("2027-07-04..2027-09-01", "Vacances d'Été"));
    }

    #[test]
    fn rentree_events_close_nothing() {
        let text = cal(&[
            "DTSTART;VALUE=DATE:20260901\nDTEND;VALUE=DATE:20260902\nSUMMARY:Rentrée scolaire des élèves",
            "DTSTART;VALUE=DATE:20260831\nSUMMARY:Rentrée scolaire des enseignants",
        ]);
        let days = parse(&text, Paris).unwrap();
        assert!(days.closed.is_empty());
        assert!(days.warnings.is_empty());
    }

    #[test]
    fn a_one_day_all_day_event_closes_nothing_and_says_so() {
        let days = parse(
            &cal(&["DTSTART;VALUE=DATE:20270507\nDTEND;VALUE=DATE:20270508\nSUMMARY:Pont"]),
            Paris,
        )
        .unwrap();
        assert!(days.closed.is_empty());
        assert_eq!(days.warnings.len(), 1);
        assert!(
            days.warnings[0].contains("\"Pont\" starting 2027-05-07 closes no day"),
            "{:?}",
            days.warnings
        );
    }

    #[test]
    fn timed_events_close_the_days_they_cover_entirely_in_the_calendar_zone() {
        // 11:30 UTC on 16 October is 13:30 in Paris: 17 October is the first full day.
        let text = cal(&[
            "DTSTART:20261016T113000Z\nDTEND:20261102T070000Z\nSUMMARY:UTC",
            "DTSTART;TZID=America/New_York:20261216T180000\nDTEND;TZID=America/New_York:20270103T180000\nSUMMARY:New York",
            "DTSTART:20270206T000000\nDTEND:20270222T000000\nSUMMARY:Floating",
        ]);
        assert_eq!(
            closed(&text),
            [
                ("2026-10-17..2026-11-01".to_owned(), "ics: UTC".to_owned()),
                // 18:00 New York = 00:00 Paris the next day, both ends.
                ("2026-12-17..2027-01-03".to_owned(), "ics: New York".to_owned()),
                ("2027-02-06..2027-02-21".to_owned(), "ics: Floating".to_owned()),
            ]
        );
    }

    #[test]
    fn folded_lines_escapes_duration_and_cancelled_events_are_understood() {
        let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261218\r\nDURATION:P17D\r\nSUMMARY:Vacances de No\r\n ël\\, zone A\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270110\r\nSTATUS:CANCELLED\r\nSUMMARY:Annulé\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(closed(text), one("2026-12-19..2027-01-03", "Vacances de Noël, zone A"));
    }

    #[test]
    fn repeating_events_are_rejected() {
        let err = parse(
            &cal(&["DTSTART;VALUE=DATE:20261017\nDTEND;VALUE=DATE:20261102\nRRULE:FREQ=YEARLY\nSUMMARY:Toussaint"]),
            Paris,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "event \"Toussaint\" repeats (RRULE): repeating events are not supported; list each closure as its own event"
        );
    }

    #[test]
    fn bad_files_and_bad_events_give_clear_errors() {
        assert_eq!(
            parse("<html>not found</html>", Paris).unwrap_err(),
            "not an iCalendar file: it does not start with BEGIN:VCALENDAR"
        );
        assert!(parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART", Paris).is_err());
        for (event, message) in [
            ("SUMMARY:X", "event \"X\" has no DTSTART"),
            (
                "DTSTART;VALUE=DATE:20261341\nSUMMARY:X",
                "event \"X\": DTSTART \"20261341\" is not a date YYYYMMDD",
            ),
            (
                "DTSTART;TZID=Mars/Olympus:20261017T120000\nSUMMARY:X",
                "event \"X\": DTSTART has an unknown TZID \"Mars/Olympus\"; use an IANA name such as Europe/Paris",
            ),
            (
                "DTSTART;VALUE=DATE:20261017\nDTEND;VALUE=DATE:20261001\nSUMMARY:X",
                "event \"X\" ends (2026-10-01) before it starts (2026-10-17)",
            ),
            (
                "DTSTART;VALUE=DATE:20261017\nDURATION:soon\nSUMMARY:X",
                "event \"X\": DURATION \"soon\" is not understood",
            ),
        ] {
            assert_eq!(parse(&cal(&[event]), Paris).unwrap_err(), message, "{event}");
        }
    }

    #[test]
    fn a_calendar_without_events_closes_nothing() {
        assert_eq!(parse(&cal(&[]), Paris).unwrap(), IcsDays::default());
    }
}
