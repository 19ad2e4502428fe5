//! `borne check`: the summary and warnings it prints.

use crate::config::{Config, Loaded};

/// The one-line summary `borne check` prints on success.
pub fn summary(config: &Config) -> String {
    let mut drivers = std::collections::BTreeMap::new();
    for ap in &config.access_points {
        *drivers.entry(ap.driver.kind()).or_insert(0usize) += 1;
    }
    let mut roles = std::collections::BTreeMap::new();
    for u in &config.users {
        *roles.entry(u.role.as_str()).or_insert(0usize) += 1;
    }
    let join = |m: std::collections::BTreeMap<&str, usize>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
        }
    };
    format!(
        "ok: {} schools, {} classrooms, {} access points ({}), {} users ({})",
        config.schools.len(),
        config.classrooms.len(),
        config.access_points.len(),
        join(drivers),
        config.users.len(),
        join(roles),
    )
}

/// What `borne check` prints for warnings.
pub fn warnings(loaded: &Loaded) -> String {
    loaded.warnings.iter().map(|w| format!("warning: {w}\n")).collect()
}
