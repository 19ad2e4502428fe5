//! borne: decides whether each classroom's Wi-Fi access point must be on or
//! off, and makes it so. Off is the safe default: every "on" ends by itself.
//!
//! The flow, module by module:
//!
//! - [`config`]: YAML → validated [`config::Config`] (every error at once).
//! - [`schedule`]: cron rules + closed-day calendars → a classroom's
//!   [`schedule::Mode`] at any instant, and its next change.
//! - [`policy`]: mode + teacher session + IT override → [`policy::Desired`]
//!   (pure: no I/O, no clock), and the verdict on a teacher's request.
//! - [`core`]: holds the configuration in force, the runtime inputs and what
//!   each access point was last seen doing; the only code that changes them,
//!   always writing to the [`store`] (SQLite) before acknowledging.
//! - [`ha`]: several instances on one PostgreSQL database: the leadership
//!   lock, the fence every driver operation checks, change notifications
//!   between instances, heartbeats.
//! - [`reconcile`]: turns desired states into driver operations, one worker
//!   per access point, with backoff and a global parallelism limit.
//! - [`driver`]: SSH (OpenWrt or custom commands), MQTT (Tasmota, Shelly,
//!   generic) and simulated access points.
//! - [`api`]: the HTTP API v1 and the pages, a thin layer over [`core`].
//! - [`daemon`]: `borne run`, which wires all of the above and takes it down.
//! - [`cli`]: the offline commands `check`, `plan` and `token new`.
//! - [`clock`]: wall-clock steps and synchronisation state, read by the
//!   planner for the [`core`].
#![recursion_limit = "256"]

pub mod api;
pub mod calendars;
pub mod cli;
pub mod clock;
pub mod config;
pub mod core;
pub mod daemon;
pub mod domain;
pub mod driver;
pub mod ha;
pub mod metrics;
pub mod policy;
pub mod reconcile;
pub mod report;
pub mod schedule;
pub mod store;
