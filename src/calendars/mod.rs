//! Calendar sources that need I/O: the last good copy of each URL calendar
//! in `state_dir` ([`cache`]). Parsing and meaning are pure and live in
//! [`crate::schedule`] (`ics`, `public_holidays`, `calendar`).

pub mod cache;
