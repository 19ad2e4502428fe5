//! Checks on free input that the core would accept but that breaks later
//! (issue 12): an override's `until` far in the future or on a leap second,
//! and reasons that look empty or reorder the text around them.

use chrono::{DateTime, Duration, Timelike, Utc};

use super::ApiError;

/// An override's `until`: at most `max` from `now`, and a leap second
/// (`10:00:60`) read as the second after it, so that what is stored and
/// echoed is plain RFC 3339 that every client parses.
pub fn until(until: DateTime<Utc>, now: DateTime<Utc>, max: std::time::Duration) -> Result<DateTime<Utc>, ApiError> {
    let until = if until.nanosecond() >= 1_000_000_000 {
        until
            .with_nanosecond(until.nanosecond() - 1_000_000_000)
            .unwrap_or(until)
            + Duration::seconds(1)
    } else {
        until
    };
    let max_days = max.as_secs() / 86_400;
    let latest = Duration::from_std(max).ok().and_then(|m| now.checked_add_signed(m));
    if latest.is_none_or(|latest| until > latest) {
        return Err(ApiError::Unprocessable(format!(
            "until is more than {max_days} days ahead (limits.override_max_days); leave it out for an override \
             that lasts until IT clears it"
        )));
    }
    Ok(until)
}

/// A reason shown to teachers: at least one visible character, and no
/// control characters (line breaks included) nor bidirectional controls,
/// which would hide or reorder what the pages and the audit log show.
pub fn reason(reason: &str) -> Result<(), ApiError> {
    if let Some(c) = reason.chars().find(|&c| c.is_control() || is_bidi_control(c)) {
        return Err(ApiError::Unprocessable(format!(
            "the reason contains a control character (U+{:04X}); write it on one line, as plain text",
            u32::from(c)
        )));
    }
    if !reason.chars().any(is_visible) {
        return Err(ApiError::Unprocessable(
            "an override needs a reason (teachers see it): it has no visible character".into(),
        ));
    }
    Ok(())
}

/// Embedding, override and isolate controls (Unicode "Trojan source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Not white space and not an invisible format character.
fn is_visible(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(
            c,
            '\u{00AD}'            // soft hyphen
            | '\u{034F}'          // combining grapheme joiner
            | '\u{061C}'          // Arabic letter mark
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{180B}'..='\u{180F}' // Mongolian selectors and vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiners, marks
            | '\u{2028}'..='\u{202F}'
            | '\u{205F}'..='\u{206F}' // word joiner, invisible operators
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}'          // zero-width no-break space
            | '\u{E0000}'..='\u{E007F}' // tags
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const YEAR: std::time::Duration = std::time::Duration::from_secs(400 * 86_400);

    #[test]
    fn until_past_the_bound_is_refused_and_a_leap_second_is_the_next_second() {
        let now = t("2026-12-01T09:00:00Z");
        assert!(until(t("9999-12-31T23:59:59Z"), now, YEAR).is_err());
        assert!(until(t("2028-01-05T09:00:01Z"), now, YEAR).is_err());
        assert!(until(t("2028-01-05T09:00:00Z"), now, YEAR).is_ok(), "400 days exactly");
        assert_eq!(
            until(t("2027-01-04T09:00:00Z"), now, YEAR).unwrap(),
            t("2027-01-04T09:00:00Z")
        );
        let leap = until(t("2026-12-31T23:59:60Z"), now, YEAR).unwrap();
        assert_eq!(leap, t("2027-01-01T00:00:00Z"));
        assert_eq!(leap.to_rfc3339(), "2027-01-01T00:00:00+00:00");
    }

    #[test]
    fn reasons_need_a_visible_character_and_no_controls() {
        assert!(reason("Évaluation nationale").is_ok());
        assert!(reason("  x ").is_ok());
        assert!(reason(&"\u{200B}".repeat(500)).is_err());
        assert!(reason("\u{FEFF}\u{2060} \u{00A0}").is_err());
        assert!(reason("line\nbreak").is_err());
        assert!(reason("bell\u{7}").is_err());
        assert!(reason("abc\u{202E}fed").is_err());
    }
}
