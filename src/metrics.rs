//! Prometheus metrics (`GET /metrics`), with the `prometheus-client` crate.
//!
//! Labels are bounded: school, classroom, access point, driver, operation,
//! result class, route template and status code. Never a token, a user
//! name or a free-text reason.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::config::{AccessPoint, Config};
use crate::driver::ObservedWifi;
use crate::policy::Wifi;
use crate::store::ObservedRecord;

/// Labels of per-AP series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApLabels {
    /// School id.
    pub school: String,
    /// Classroom id.
    pub classroom: String,
    /// AP id.
    pub ap: String,
}

impl ApLabels {
    fn of(ap: &AccessPoint) -> Self {
        Self {
            school: ap.school.to_string(),
            classroom: ap.classroom.to_string(),
            ap: ap.id.to_string(),
        }
    }
}

/// Labels of driver operations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// `ssh`, `mqtt`, `sim`.
    pub driver: String,
    /// `apply` or `observe`.
    pub op: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of driver latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriverLabels {
    /// `ssh`, `mqtt`, `sim`.
    pub driver: String,
    /// `apply` or `observe`.
    pub op: String,
}

/// Labels of HTTP requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Route template, e.g. `/api/v1/classrooms/{id}/wifi`.
    pub route: String,
    /// Method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Labels of build info.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Every instrument, registered once.
pub struct Metrics {
    registry: Registry,
    ap_desired: Family<ApLabels, Gauge>,
    ap_observed: Family<ApLabels, Gauge>,
    ap_reachable: Family<ApLabels, Gauge>,
    ap_failures: Family<ApLabels, Gauge>,
    operations: Family<OpLabels, Counter>,
    latency: Family<DriverLabels, Histogram>,
    /// Operations waiting for a slot or in flight.
    pub queue_depth: Gauge,
    http: Family<HttpLabels, Counter>,
    /// Classroom mode changes the planner applied.
    pub schedule_changes: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every instrument.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("borne");
        let ap_desired = Family::<ApLabels, Gauge>::default();
        let ap_observed = Family::<ApLabels, Gauge>::default();
        let ap_reachable = Family::<ApLabels, Gauge>::default();
        let ap_failures = Family::<ApLabels, Gauge>::default();
        let operations = Family::<OpLabels, Counter>::default();
        let latency = Family::<DriverLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to ~33 s: MQTT acknowledgements to SSH timeouts.
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let queue_depth = Gauge::default();
        let http = Family::<HttpLabels, Counter>::default();
        let schedule_changes = Counter::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register("ap_desired_on", "Desired Wi-Fi state of the access point (1 on, 0 off)", ap_desired.clone());
        registry.register(
            "ap_observed_on",
            "Observed Wi-Fi state of the access point (1 on, 0 off, -1 unknown)",
            ap_observed.clone(),
        );
        registry.register("ap_reachable", "Whether the last operation reached the access point", ap_reachable.clone());
        registry.register("ap_consecutive_failures", "Failed operations since the last success", ap_failures.clone());
        registry.register("driver_operations", "Driver operations by result", operations.clone());
        registry.register("driver_operation_seconds", "Driver operation latency", latency.clone());
        registry.register("reconciler_queue_depth", "Operations waiting for a slot or in flight", queue_depth.clone());
        registry.register("http_requests", "HTTP requests by route and status", http.clone());
        registry.register("schedule_changes", "Classroom mode changes applied", schedule_changes.clone());
        registry.register("build_info", "Build information", build);
        Self {
            registry,
            ap_desired,
            ap_observed,
            ap_reachable,
            ap_failures,
            operations,
            latency,
            queue_depth,
            http,
            schedule_changes,
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Records an AP's desired state.
    pub fn desired(&self, ap: &AccessPoint, wifi: Wifi) {
        self.ap_desired.get_or_create(&ApLabels::of(ap)).set(i64::from(wifi == Wifi::On));
    }

    /// Records what is known of an AP.
    pub fn observe_ap(&self, ap: &AccessPoint, o: &ObservedRecord) {
        let labels = ApLabels::of(ap);
        let v = match o.wifi {
            ObservedWifi::On => 1,
            ObservedWifi::Off => 0,
            ObservedWifi::Unknown => -1,
        };
        self.ap_observed.get_or_create(&labels).set(v);
        self.ap_reachable.get_or_create(&labels).set(i64::from(o.reachable));
    }

    /// Records an AP's failure count.
    pub fn failures(&self, ap: &AccessPoint, n: u32) {
        self.ap_failures.get_or_create(&ApLabels::of(ap)).set(i64::from(n));
    }

    /// Records a driver operation.
    pub fn operation(&self, driver: &str, op: &str, ok: bool, took: Duration) {
        self.operations
            .get_or_create(&OpLabels {
                driver: driver.to_owned(),
                op: op.to_owned(),
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&DriverLabels {
                driver: driver.to_owned(),
                op: op.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records an HTTP request.
    pub fn http(&self, route: &str, method: &str, status: u16) {
        self.http
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
    }

    /// Drops series of APs that left the configuration (or moved).
    pub fn retain_aps(&self, old: &Config, new: &Config) {
        let keep: std::collections::HashSet<ApLabels> = new.access_points.iter().map(ApLabels::of).collect();
        for labels in old.access_points.iter().map(ApLabels::of).filter(|l| !keep.contains(l)) {
            for family in [&self.ap_desired, &self.ap_observed, &self.ap_reachable, &self.ap_failures] {
                family.remove(&labels);
            }
        }
    }
}
