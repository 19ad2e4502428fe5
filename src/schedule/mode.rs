//! [`Mode`]: what the schedule allows in a classroom at an instant, the
//! value every other part of the schedule computes.

use std::fmt;
use std::str::FromStr;

/// What the schedule allows in a classroom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Wi-Fi off, and teachers cannot turn it on.
    Locked,
    /// Wi-Fi off, but a teacher may turn it on.
    Available,
    /// Wi-Fi on.
    On,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 3] = [Mode::Locked, Mode::Available, Mode::On];

    /// The mode's name as written in configuration: `locked`, `available` or `on`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Locked => "locked",
            Mode::Available => "available",
            Mode::On => "on",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;

    /// Parses `locked`, `available` or `on` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown mode {s:?}: expected locked, available or on"))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    // ---- Mode -------------------------------------------------------------

    #[test]
    fn modes_display_and_parse_as_lowercase_words() {
        for (mode, word) in [
            (Mode::Locked, "locked"),
            (Mode::Available, "available"),
            (Mode::On, "on"),
        ] {
            assert_eq!(mode.to_string(), word);
            assert_eq!(word.parse::<Mode>(), Ok(mode));
            assert_eq!(word.to_uppercase().parse::<Mode>(), Ok(mode));
            assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{word}\""));
            assert_eq!(serde_json::from_str::<Mode>(&format!("\"{word}\"")).unwrap(), mode);
        }
    }

    #[test]
    fn an_unknown_mode_is_an_error_naming_the_choices() {
        let err = "off".parse::<Mode>().unwrap_err();
        assert_eq!(err, r#"unknown mode "off": expected locked, available or on"#);
    }
}
