//! Prometheus metrics (`GET /metrics`), with the `prometheus-client` crate.
//!
//! Labels are bounded: school, classroom, access point, driver, operation,
//! result class, route template and status code. Never a token, a user
//! name or a free-text reason.

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::{ObservedWifi, Wifi};

/// One access point's state at scrape time. Per-AP series are computed
/// from the core's state when `/metrics` is read rather than kept in
/// metric families: at 20,000 APs, four families of stored label sets cost
/// tens of megabytes for numbers the core already holds.
#[derive(Debug, Clone)]
pub struct ApSample {
    /// School id.
    pub school: String,
    /// Classroom id.
    pub classroom: String,
    /// AP id.
    pub ap: String,
    /// Desired state.
    pub desired: Wifi,
    /// Observed state.
    pub observed: ObservedWifi,
    /// Reached by the last operation.
    pub reachable: bool,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When the device's lease runs out (Unix seconds), while it holds one.
    pub lease_expiry: Option<i64>,
}

/// Encodes the per-AP gauges from samples.
#[derive(Debug)]
struct ApCollector(Vec<ApSample>);

impl Collector for ApCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Value = fn(&ApSample) -> i64;
        let gauges: [(&str, &str, Value); 4] = [
            (
                "ap_desired_on",
                "Desired Wi-Fi state of the access point (1 on, 0 off)",
                |s| i64::from(s.desired == Wifi::On),
            ),
            (
                "ap_observed_on",
                "Observed Wi-Fi state of the access point (1 on, 0 off, -1 unknown)",
                |s| match s.observed {
                    ObservedWifi::On => 1,
                    ObservedWifi::Off => 0,
                    ObservedWifi::Unknown => -1,
                },
            ),
            (
                "ap_reachable",
                "Whether the last operation reached the access point",
                |s| i64::from(s.reachable),
            ),
            (
                "ap_consecutive_failures",
                "Failed operations since the last success",
                |s| i64::from(s.consecutive_failures),
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for s in &self.0 {
                let labels = [
                    ("school", s.school.as_str()),
                    ("classroom", s.classroom.as_str()),
                    ("ap", s.ap.as_str()),
                ];
                ConstGauge::new(value(s)).encode(family.encode_family(&labels)?)?;
            }
        }
        // Only APs holding a lease have a series: an absent series reads
        // "no lease", where a 0 would read "expired in 1970".
        let mut family = encoder.encode_descriptor(
            "ap_lease_expiry_timestamp_seconds",
            "When the access point switches itself off unless borne renews its lease (Unix time)",
            None,
            MetricType::Gauge,
        )?;
        for s in &self.0 {
            if let Some(t) = s.lease_expiry {
                let labels = [
                    ("school", s.school.as_str()),
                    ("classroom", s.classroom.as_str()),
                    ("ap", s.ap.as_str()),
                ];
                ConstGauge::new(t).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
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

/// Labels of calendar fetches.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CalendarLabels {
    /// The calendar's name.
    pub calendar: String,
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

/// Labels of lease renewals.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: String,
}

/// Every instrument, registered once.
pub struct Metrics {
    registry: Registry,
    operations: Family<OpLabels, Counter>,
    latency: Family<DriverLabels, Histogram>,
    /// Operations waiting for a slot or in flight.
    pub queue_depth: Gauge,
    http: Family<HttpLabels, Counter>,
    /// Classroom mode changes the planner applied.
    pub schedule_changes: Counter,
    /// Failed fetches of URL calendars, by calendar.
    pub calendar_fetch_failures: Family<CalendarLabels, Counter>,
    lease_renewals: Family<ResultLabels, Counter>,
    /// Wall-clock steps the planner saw (more than 2 s either way).
    pub clock_steps: Counter,
    /// 1 while the clock is synchronised (kernel and plausibility), else 0.
    pub clock_synchronized: Gauge,
    /// High availability: `borne_leader` (1 while this instance leads) and
    /// `borne_failovers_total` (leaderships it took over from another).
    pub leadership: crate::ha::LeaderMetrics,
    /// 1 while another instance leads with a different configuration.
    pub config_mismatch: Gauge,
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
        registry.register("driver_operations", "Driver operations by result", operations.clone());
        registry.register("driver_operation_seconds", "Driver operation latency", latency.clone());
        registry.register(
            "reconciler_queue_depth",
            "Operations waiting for a slot or in flight",
            queue_depth.clone(),
        );
        registry.register("http_requests", "HTTP requests by route and status", http.clone());
        registry.register(
            "schedule_changes",
            "Classroom mode changes applied",
            schedule_changes.clone(),
        );
        let calendar_fetch_failures = Family::<CalendarLabels, Counter>::default();
        registry.register(
            "calendar_fetch_failures",
            "Failed fetches of URL calendars (the last good copy is kept)",
            calendar_fetch_failures.clone(),
        );
        registry.register("build_info", "Build information", build);
        let lease_renewals = Family::<ResultLabels, Counter>::default();
        registry.register(
            "lease_renewals",
            "Device-side lease renewals by result",
            lease_renewals.clone(),
        );
        let clock_steps = Counter::default();
        registry.register(
            "clock_steps",
            "Wall-clock steps of more than 2 s seen by the planner",
            clock_steps.clone(),
        );
        let clock_synchronized = Gauge::default();
        registry.register(
            "clock_synchronized",
            "Whether the system clock is synchronised (1) or not (0)",
            clock_synchronized.clone(),
        );
        // A lone instance (no database) leads from the start; the daemon
        // resets it when it joins a cluster.
        let leadership = crate::ha::LeaderMetrics::default();
        leadership.leader.set(1);
        registry.register(
            "leader",
            "Whether this instance leads (runs the reconciler and drives access points)",
            leadership.leader.clone(),
        );
        registry.register(
            "failovers",
            "Leaderships this instance took over from another instance",
            leadership.failovers.clone(),
        );
        let config_mismatch = Gauge::default();
        registry.register(
            "config_mismatch",
            "Whether the leading instance runs a different configuration (SHA-256) than this one",
            config_mismatch.clone(),
        );
        Self {
            leadership,
            config_mismatch,
            registry,
            operations,
            latency,
            queue_depth,
            http,
            schedule_changes,
            calendar_fetch_failures,
            lease_renewals,
            clock_steps,
            clock_synchronized,
        }
    }

    /// The text exposition, with the per-AP gauges from `aps`.
    pub fn render(&self, aps: Vec<ApSample>) -> String {
        let mut per_ap = Registry::with_prefix("borne");
        per_ap.register_collector(Box::new(ApCollector(aps)));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &per_ap);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
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

    /// Records a lease renewal.
    pub fn lease_renewal(&self, ok: bool) {
        self.lease_renewals
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
    }

    /// Lease renewals that succeeded so far (benchmarks and tests).
    pub fn lease_renewals_ok(&self) -> u64 {
        self.lease_renewals_with("ok")
    }

    /// Lease renewals that failed so far (benchmarks and tests).
    pub fn lease_renewals_failed(&self) -> u64 {
        self.lease_renewals_with("error")
    }

    fn lease_renewals_with(&self, result: &str) -> u64 {
        self.lease_renewals
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .get()
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
}
