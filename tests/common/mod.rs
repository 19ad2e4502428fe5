//! Kept so that a test file written as `mod common; use common::*;` still
//! builds. New tests use the shared support crate directly:
//! `use borne_test_support::daemon::*;` (and `::peers`, `::mqtt`, `::ssh`).
#![allow(unused_imports)]

pub use borne_test_support::daemon::*;
