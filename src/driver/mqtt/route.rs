//! The pure half of the MQTT driver: which access point a topic belongs to,
//! what a payload on it means, and how often a complaint about a message may
//! be logged. No I/O, no clock of its own (the caller passes `now`), so the
//! event loop stays a thin shell around these functions and they are tested
//! here without a broker.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::config::{ApId, Config, DriverConfig, MqttAp, StateFormat};
use crate::domain::ObservedWifi;

/// Longest state or availability payload that is looked at. Devices send a
/// few bytes (`ON`, `true`, `Online`); anything longer is not a state, and
/// comparing or logging it would only cost time and memory.
pub(crate) const MAX_PAYLOAD: usize = 64;

/// Longest Shelly Gen2 notification that is parsed: a `NotifyStatus` is a
/// few hundred bytes, a `NotifyFullStatus` of a Pro 4PM a few KiB.
pub(crate) const MAX_JSON_PAYLOAD: usize = 16 << 10;

/// Why a message was not understood. Each one is logged (rate-limited) and
/// otherwise ignored: a device or a stray client must never be able to
/// stall or crash the event loop with what it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ignored {
    /// The payload is longer than [`MAX_PAYLOAD`] bytes (or
    /// [`MAX_JSON_PAYLOAD`] for JSON notifications).
    TooLarge(usize),
    /// The payload is not UTF-8.
    NotUtf8,
    /// The payload is text but none of the configured words.
    Unrecognized,
    /// The payload is not the JSON-RPC notification expected.
    NotJson,
    /// No access point listens on this topic (a subscription left over
    /// from before a reload, or a broker that sends what was not asked).
    NoAccessPoint,
}

impl Ignored {
    /// Short reason for the log line.
    pub(crate) fn describe(self) -> String {
        match self {
            Ignored::TooLarge(n) => format!("payload of {n} bytes is longer than {MAX_PAYLOAD}"),
            Ignored::NotUtf8 => "payload is not UTF-8".to_owned(),
            Ignored::Unrecognized => "payload matches none of the configured words".to_owned(),
            Ignored::NotJson => "payload is not a JSON-RPC notification".to_owned(),
            Ignored::NoAccessPoint => "no access point uses this topic".to_owned(),
        }
    }
}

/// Reads a two-word payload: `Ok(true)` for `yes`, `Ok(false)` for `no`.
///
/// The match is exact and case-sensitive, as configured (Tasmota says `ON`,
/// Shelly says `on`: a device that changes case is a different device).
/// Leading and trailing ASCII whitespace is trimmed first, on both sides of
/// the comparison, because hand-written publishers (`echo ON | mosquitto_pub
/// -l`, shell scripts) add a newline, and no device means anything by it.
///
/// # Errors
/// [`Ignored`] when the payload is too large, not UTF-8, or neither word.
pub(crate) fn parse_payload(payload: &[u8], yes: &str, no: &str) -> Result<bool, Ignored> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Ignored::TooLarge(payload.len()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| Ignored::NotUtf8)?.trim_ascii();
    if text == yes.trim_ascii() {
        Ok(true)
    } else if text == no.trim_ascii() {
        Ok(false)
    } else {
        Err(Ignored::Unrecognized)
    }
}

/// Reads a Shelly Gen2 notification on `<id>/events/rpc`: `Ok(Some(on))`
/// when it carries `params["switch:0"].output`, `Ok(None)` for every other
/// notification (power readings, inputs, Wi-Fi events), which is normal
/// traffic and not worth a warning.
///
/// # Errors
/// [`Ignored`] when the payload is too large or not a JSON object with a
/// `method`.
pub(crate) fn parse_shelly_notify(payload: &[u8]) -> Result<Option<bool>, Ignored> {
    if payload.len() > MAX_JSON_PAYLOAD {
        return Err(Ignored::TooLarge(payload.len()));
    }
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|_| Ignored::NotJson)?;
    let method = value.get("method").and_then(|m| m.as_str()).ok_or(Ignored::NotJson)?;
    if method != "NotifyStatus" && method != "NotifyFullStatus" {
        return Ok(None);
    }
    Ok(value
        .get("params")
        .and_then(|p| p.get("switch:0"))
        .and_then(|s| s.get("output"))
        .and_then(serde_json::Value::as_bool))
}

/// Reads a Shelly Gen2 JSON-RPC reply on `<src>/rpc`: `Ok(Some(on))` when
/// it answers request `id` with a `result.output` (`Switch.GetStatus`),
/// `Ok(None)` for a reply to another request or another device (the reply
/// topic is shared by every Gen2 device), which is not worth a warning.
///
/// # Errors
/// [`Ignored`] when the payload is too large or not a JSON object.
pub(crate) fn parse_shelly_reply(payload: &[u8], id: u64) -> Result<Option<bool>, Ignored> {
    if payload.len() > MAX_JSON_PAYLOAD {
        return Err(Ignored::TooLarge(payload.len()));
    }
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|_| Ignored::NotJson)?;
    if !value.is_object() {
        return Err(Ignored::NotJson);
    }
    if value.get("id").and_then(serde_json::Value::as_u64) != Some(id) {
        return Ok(None);
    }
    Ok(value
        .get("result")
        .and_then(|r| r.get("output"))
        .and_then(serde_json::Value::as_bool))
}

/// What a message on a routed topic says about one access point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meaning {
    /// The device reported its relay state.
    State(ObservedWifi),
    /// The device came online (`true`) or went offline (`false`).
    Available(bool),
}

/// What a topic is to one access point.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    /// Its state topic, with the words for on and off.
    State { on: String, off: String },
    /// Its Shelly Gen2 notification topic.
    ShellyNotify,
    /// The shared JSON-RPC reply topic, where its status replies carry this id.
    ShellyReply { id: u64 },
    /// Its availability topic, with the words for online and offline.
    Availability { online: String, offline: String },
}

/// One access point listening on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    ap: ApId,
    role: Role,
}

/// Every MQTT access point of a configuration, indexed by the topics the
/// driver subscribes to. Rebuilt whole at each reload.
#[derive(Debug, Default, Clone)]
pub(crate) struct Routes {
    /// Topic → the APs listening on it (usually one; several APs may share
    /// a device, and one topic may be both a state and an availability
    /// topic of a generic device).
    by_topic: HashMap<String, Vec<Route>>,
    /// Every MQTT AP, in configuration order.
    aps: Vec<ApId>,
}

impl Routes {
    /// The routes of every MQTT access point of `config`.
    pub(crate) fn from_config(config: &Config) -> Self {
        let mut routes = Routes::default();
        for ap in &config.access_points {
            let DriverConfig::Mqtt(mqtt) = &ap.driver else {
                continue;
            };
            routes.add(ap.id.clone(), mqtt);
        }
        routes
    }

    /// Adds one access point (also used by tests to build routes by hand).
    pub(crate) fn add(&mut self, ap: ApId, mqtt: &MqttAp) {
        if let Some(topic) = &mqtt.state_topic {
            let role = match mqtt.state_format {
                StateFormat::Words => Role::State {
                    on: mqtt.state_on.clone(),
                    off: mqtt.state_off.clone(),
                },
                StateFormat::ShellyNotify => Role::ShellyNotify,
            };
            self.by_topic
                .entry(topic.clone())
                .or_default()
                .push(Route { ap: ap.clone(), role });
        }
        if let Some(request) = &mqtt.status_request {
            self.by_topic
                .entry(request.reply_topic.clone())
                .or_default()
                .push(Route {
                    ap: ap.clone(),
                    role: Role::ShellyReply { id: request.id },
                });
        }
        if let Some(topic) = &mqtt.availability_topic {
            self.by_topic.entry(topic.clone()).or_default().push(Route {
                ap: ap.clone(),
                role: Role::Availability {
                    online: mqtt.payload_available.clone(),
                    offline: mqtt.payload_not_available.clone(),
                },
            });
        }
        self.aps.push(ap);
    }

    /// Every topic to subscribe to, deduplicated and sorted (so that
    /// subscriptions are sent in a stable order).
    pub(crate) fn topics(&self) -> BTreeSet<String> {
        self.by_topic.keys().cloned().collect()
    }

    /// Every MQTT access point, in configuration order.
    pub(crate) fn ap_ids(&self) -> impl Iterator<Item = &ApId> {
        self.aps.iter()
    }

    /// What a message says, for every access point listening on `topic`.
    ///
    /// A payload is understood when at least one listener understands it:
    /// on a topic that is both the state and the availability topic of a
    /// generic device, `ON` is a state and not a bad availability word.
    ///
    /// # Errors
    /// Why the message was ignored when no listener understood it. When
    /// several listeners failed, the first failure is returned (they all see
    /// the same bytes, so size and UTF-8 failures are shared).
    pub(crate) fn interpret(&self, topic: &str, payload: &[u8]) -> Result<Vec<(ApId, Meaning)>, Ignored> {
        let Some(routes) = self.by_topic.get(topic) else {
            return Err(Ignored::NoAccessPoint);
        };
        let mut understood = Vec::new();
        let mut first_failure = None;
        for route in routes {
            let parsed = match &route.role {
                Role::State { on, off } => parse_payload(payload, on, off)
                    .map(|on| Meaning::State(if on { ObservedWifi::On } else { ObservedWifi::Off })),
                Role::ShellyNotify => match parse_shelly_notify(payload) {
                    Ok(Some(on)) => Ok(Meaning::State(if on { ObservedWifi::On } else { ObservedWifi::Off })),
                    // Understood, says nothing about the relay.
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
                Role::ShellyReply { id } => match parse_shelly_reply(payload, *id) {
                    Ok(Some(on)) => Ok(Meaning::State(if on { ObservedWifi::On } else { ObservedWifi::Off })),
                    // Another device's reply, or a reply to a command.
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
                Role::Availability { online, offline } => {
                    parse_payload(payload, online, offline).map(Meaning::Available)
                }
            };
            match parsed {
                Ok(meaning) => understood.push((route.ap.clone(), meaning)),
                Err(e) => {
                    first_failure.get_or_insert(e);
                }
            }
        }
        match (understood.is_empty(), first_failure) {
            (true, Some(e)) => Err(e),
            _ => Ok(understood),
        }
    }
}

/// Lets at most one warning per key (a topic) through per interval, and
/// counts the ones it held back, so that a device flooding garbage costs
/// one log line a minute instead of filling the journal.
///
/// The number of keys is bounded: when [`WarnLimiter::MAX_KEYS`] topics are
/// being tracked, expired ones are dropped, and if none has expired the new
/// topic shares one catch-all key (so at most `MAX_KEYS + 1` entries). A flood over random topics therefore
/// cannot grow memory either.
#[derive(Debug)]
pub(crate) struct WarnLimiter {
    interval: Duration,
    /// Key → (when a warning last went through, warnings held back since).
    seen: HashMap<String, (Instant, u64)>,
}

impl WarnLimiter {
    /// Most keys tracked at once.
    pub(crate) const MAX_KEYS: usize = 256;
    /// The key shared by topics beyond [`Self::MAX_KEYS`].
    pub(crate) const OVERFLOW_KEY: &'static str = "(other topics)";

    /// A limiter letting one warning per key through every `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            seen: HashMap::new(),
        }
    }

    /// Whether a warning about `key` may be logged at `now`: `Some(n)` with
    /// the number of warnings about it held back since the last one logged,
    /// `None` to stay quiet.
    pub(crate) fn allow(&mut self, key: &str, now: Instant) -> Option<u64> {
        let key = if self.seen.contains_key(key) || self.seen.len() < Self::MAX_KEYS {
            key
        } else {
            let interval = self.interval;
            self.seen
                .retain(|_, (last, _)| now.saturating_duration_since(*last) < interval);
            if self.seen.len() < Self::MAX_KEYS {
                key
            } else {
                Self::OVERFLOW_KEY
            }
        };
        match self.seen.get_mut(key) {
            Some((last, held)) if now.saturating_duration_since(*last) < self.interval => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = *held;
                *last = now;
                *held = 0;
                Some(n)
            }
            None => {
                self.seen.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasmota(topic: &str) -> MqttAp {
        MqttAp::tasmota(topic)
    }

    fn generic(command: &str) -> MqttAp {
        MqttAp::generic(command)
    }

    #[test]
    fn shelly_gen2_notify_status_reads_switch_0_output() {
        let on = br#"{"src":"shellyplus1-a8032ab12345","dst":"shellyplus1-a8032ab12345/events","method":"NotifyStatus","params":{"ts":1700000000.12,"switch:0":{"id":0,"output":true,"source":"MQTT"}}}"#;
        assert_eq!(parse_shelly_notify(on), Ok(Some(true)));
        let timer = br#"{"method":"NotifyStatus","params":{"switch:0":{"id":0,"output":false,"source":"timer"}}}"#;
        assert_eq!(parse_shelly_notify(timer), Ok(Some(false)));
        let power = br#"{"method":"NotifyStatus","params":{"switch:0":{"id":0,"apower":4.2}}}"#;
        assert_eq!(parse_shelly_notify(power), Ok(None));
        let event = br#"{"method":"NotifyEvent","params":{"events":[]}}"#;
        assert_eq!(parse_shelly_notify(event), Ok(None));
        assert_eq!(parse_shelly_notify(b"ON"), Err(Ignored::NotJson));
        assert_eq!(parse_shelly_notify(b"{}"), Err(Ignored::NotJson));
        assert!(matches!(
            parse_shelly_notify(&vec![b' '; MAX_JSON_PAYLOAD + 1]),
            Err(Ignored::TooLarge(_))
        ));
    }

    #[test]
    fn shelly_gen2_status_replies_are_routed_by_request_id() {
        let mut routes = Routes::default();
        let a = MqttAp::shelly_gen2("shellyplus1-a");
        let b = MqttAp::shelly_gen2("shellyplus1-b");
        let (ida, idb) = (
            a.status_request.clone().unwrap().id,
            b.status_request.clone().unwrap().id,
        );
        assert_ne!(ida, idb);
        routes.add(ApId::from("a"), &a);
        routes.add(ApId::from("b"), &b);
        let reply = |id: u64, on: bool| {
            format!(
                r#"{{"id":{id},"src":"shellyplus1-x","dst":"borne","result":{{"id":0,"source":"init","output":{on}}}}}"#
            )
        };
        assert_eq!(
            routes.interpret("borne/rpc", reply(idb, true).as_bytes()),
            Ok(vec![(ApId::from("b"), Meaning::State(ObservedWifi::On))])
        );
        assert_eq!(
            routes.interpret("borne/rpc", reply(ida, false).as_bytes()),
            Ok(vec![(ApId::from("a"), Meaning::State(ObservedWifi::Off))])
        );
        // The reply to Switch.Set or Switch.SetConfig says nothing of the state.
        assert_eq!(
            routes.interpret(
                "borne/rpc",
                br#"{"id":2,"src":"x","dst":"borne","result":{"restart_required":false}}"#
            ),
            Ok(vec![])
        );
        assert_eq!(routes.interpret("borne/rpc", b"[1]"), Err(Ignored::NotJson));
    }

    #[test]
    fn shelly_gen2_routes_notifications_and_availability() {
        let mut routes = Routes::default();
        routes.add(ApId::from("a"), &MqttAp::shelly_gen2("shellyplus1-a"));
        let on = br#"{"method":"NotifyStatus","params":{"switch:0":{"output":true}}}"#;
        assert_eq!(
            routes.interpret("shellyplus1-a/events/rpc", on),
            Ok(vec![(ApId::from("a"), Meaning::State(ObservedWifi::On))])
        );
        assert_eq!(
            routes.interpret("shellyplus1-a/events/rpc", br#"{"method":"NotifyStatus","params":{}}"#),
            Ok(vec![])
        );
        assert_eq!(
            routes.interpret("shellyplus1-a/online", b"false"),
            Ok(vec![(ApId::from("a"), Meaning::Available(false))])
        );
    }

    #[test]
    fn payload_matches_the_configured_words_exactly() {
        assert_eq!(parse_payload(b"ON", "ON", "OFF"), Ok(true));
        assert_eq!(parse_payload(b"OFF", "ON", "OFF"), Ok(false));
        assert_eq!(parse_payload(b"on", "on", "off"), Ok(true));
    }

    #[test]
    fn payload_case_must_be_as_configured() {
        assert_eq!(parse_payload(b"on", "ON", "OFF"), Err(Ignored::Unrecognized));
        assert_eq!(parse_payload(b"Off", "ON", "OFF"), Err(Ignored::Unrecognized));
        assert_eq!(
            parse_payload(b"online", "Online", "Offline"),
            Err(Ignored::Unrecognized)
        );
    }

    #[test]
    fn payload_surrounding_ascii_whitespace_is_trimmed() {
        assert_eq!(parse_payload(b"ON\n", "ON", "OFF"), Ok(true));
        assert_eq!(parse_payload(b" \tOFF\r\n", "ON", "OFF"), Ok(false));
        // Configured words are trimmed the same way.
        assert_eq!(parse_payload(b"ON", " ON ", "OFF"), Ok(true));
        // Inner whitespace is part of the word.
        assert_eq!(parse_payload(b"O N", "ON", "OFF"), Err(Ignored::Unrecognized));
    }

    #[test]
    fn payload_garbage_is_ignored_with_its_reason() {
        assert_eq!(parse_payload(b"", "ON", "OFF"), Err(Ignored::Unrecognized));
        assert_eq!(parse_payload(b"   ", "ON", "OFF"), Err(Ignored::Unrecognized));
        assert_eq!(parse_payload(b"TOGGLE", "ON", "OFF"), Err(Ignored::Unrecognized));
        assert_eq!(
            parse_payload(b"{\"POWER\":\"ON\"}", "ON", "OFF"),
            Err(Ignored::Unrecognized)
        );
        assert_eq!(parse_payload(&[0xff, 0xfe, 0x00], "ON", "OFF"), Err(Ignored::NotUtf8));
        // A prefix of a valid word followed by invalid UTF-8 is still invalid.
        assert_eq!(parse_payload(b"ON\xc3", "ON", "OFF"), Err(Ignored::NotUtf8));
    }

    #[test]
    fn payload_larger_than_the_limit_is_ignored_before_being_read() {
        let big = vec![b'O'; MAX_PAYLOAD + 1];
        assert_eq!(
            parse_payload(&big, "ON", "OFF"),
            Err(Ignored::TooLarge(MAX_PAYLOAD + 1))
        );
        let huge = vec![0xffu8; 1 << 20];
        assert_eq!(parse_payload(&huge, "ON", "OFF"), Err(Ignored::TooLarge(1 << 20)));
        // At the limit, it is read (and here not understood).
        let edge = vec![b' '; MAX_PAYLOAD];
        assert_eq!(parse_payload(&edge, "ON", "OFF"), Err(Ignored::Unrecognized));
    }

    #[test]
    fn state_topic_routes_to_its_access_point() {
        let mut routes = Routes::default();
        routes.add(ApId::from("a"), &tasmota("plug-a"));
        routes.add(ApId::from("b"), &tasmota("plug-b"));
        assert_eq!(
            routes.interpret("stat/plug-b/POWER", b"ON"),
            Ok(vec![(ApId::from("b"), Meaning::State(ObservedWifi::On))])
        );
        assert_eq!(
            routes.interpret("stat/plug-a/POWER", b"OFF"),
            Ok(vec![(ApId::from("a"), Meaning::State(ObservedWifi::Off))])
        );
    }

    #[test]
    fn availability_topic_routes_to_its_access_point() {
        let mut routes = Routes::default();
        routes.add(ApId::from("a"), &tasmota("plug-a"));
        assert_eq!(
            routes.interpret("tele/plug-a/LWT", b"Offline"),
            Ok(vec![(ApId::from("a"), Meaning::Available(false))])
        );
        assert_eq!(
            routes.interpret("tele/plug-a/LWT", b"Online"),
            Ok(vec![(ApId::from("a"), Meaning::Available(true))])
        );
    }

    #[test]
    fn topic_of_no_access_point_is_ignored() {
        let mut routes = Routes::default();
        routes.add(ApId::from("a"), &tasmota("plug-a"));
        assert_eq!(
            routes.interpret("stat/plug-z/POWER", b"ON"),
            Err(Ignored::NoAccessPoint)
        );
        // The command topic is published to, never listened to.
        assert_eq!(
            routes.interpret("cmnd/plug-a/POWER", b"ON"),
            Err(Ignored::NoAccessPoint)
        );
        // Topics are matched exactly: no prefix or case folding.
        assert_eq!(
            routes.interpret("stat/plug-a/power", b"ON"),
            Err(Ignored::NoAccessPoint)
        );
        assert_eq!(
            routes.interpret("stat/plug-a/POWER/", b"ON"),
            Err(Ignored::NoAccessPoint)
        );
    }

    #[test]
    fn shared_topic_reports_to_every_access_point_on_it() {
        let mut routes = Routes::default();
        routes.add(ApId::from("a"), &tasmota("plug"));
        routes.add(ApId::from("b"), &tasmota("plug"));
        assert_eq!(
            routes.interpret("stat/plug/POWER", b"ON"),
            Ok(vec![
                (ApId::from("a"), Meaning::State(ObservedWifi::On)),
                (ApId::from("b"), Meaning::State(ObservedWifi::On)),
            ])
        );
        assert_eq!(routes.topics().len(), 2, "subscriptions are deduplicated");
    }

    #[test]
    fn one_topic_for_state_and_availability_is_understood_by_either() {
        let mut ap = generic("dev/x/set");
        ap.state_topic = Some("dev/x".into());
        ap.availability_topic = Some("dev/x".into());
        let mut routes = Routes::default();
        routes.add(ApId::from("x"), &ap);
        assert_eq!(
            routes.interpret("dev/x", b"ON"),
            Ok(vec![(ApId::from("x"), Meaning::State(ObservedWifi::On))])
        );
        assert_eq!(
            routes.interpret("dev/x", b"offline"),
            Ok(vec![(ApId::from("x"), Meaning::Available(false))])
        );
        assert_eq!(routes.interpret("dev/x", b"maybe"), Err(Ignored::Unrecognized));
    }

    #[test]
    fn generic_without_state_topic_subscribes_to_nothing() {
        let mut routes = Routes::default();
        routes.add(ApId::from("g"), &generic("dev/g/set"));
        assert!(routes.topics().is_empty());
        assert_eq!(routes.ap_ids().collect::<Vec<_>>(), vec![&ApId::from("g")]);
    }

    #[test]
    fn limiter_lets_one_warning_per_key_per_interval() {
        let t0 = Instant::now();
        let mut l = WarnLimiter::new(Duration::from_secs(60));
        assert_eq!(l.allow("t/a", t0), Some(0));
        assert_eq!(l.allow("t/a", t0 + Duration::from_secs(1)), None);
        assert_eq!(l.allow("t/a", t0 + Duration::from_secs(59)), None);
        // Another topic has its own budget.
        assert_eq!(l.allow("t/b", t0 + Duration::from_secs(2)), Some(0));
        // After the interval, one goes through with the count held back.
        assert_eq!(l.allow("t/a", t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(l.allow("t/a", t0 + Duration::from_secs(61)), None);
        assert_eq!(l.allow("t/a", t0 + Duration::from_secs(200)), Some(1));
    }

    #[test]
    fn limiter_memory_is_bounded_under_a_flood_of_topics() {
        let t0 = Instant::now();
        let mut l = WarnLimiter::new(Duration::from_secs(60));
        let mut logged = 0;
        for i in 0..10_000 {
            if l.allow(&format!("flood/{i}"), t0).is_some() {
                logged += 1;
            }
        }
        assert_eq!(l.seen.len(), WarnLimiter::MAX_KEYS + 1);
        // MAX_KEYS topics got their line, then the catch-all key got one.
        assert_eq!(logged, WarnLimiter::MAX_KEYS + 1);
        // Once the interval passed, expired keys make room for new topics.
        assert_eq!(l.allow("fresh", t0 + Duration::from_secs(61)), Some(0));
        assert_eq!(l.seen.len(), 1);
    }
}
