//! URL calendars: fetching the iCalendar file ([`fetch`]) and the daemon's
//! task that keeps each copy fresh and the schedules in step ([`refresh`]).
//!
//! Receives the configuration in force (which calendars have a `url:`, the
//! `state_dir`); hands back a configuration whose schedules hold the new
//! closed days. Parsing and meaning are pure and live in [`crate::schedule`];
//! the last good copy and the fetch status live in `state_dir`
//! ([`crate::config::calendar_cache`]).

pub mod fetch;
pub mod refresh;
