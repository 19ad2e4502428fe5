//! Fake MQTT firmware that honours device-side timers, for the lease tests
//! (issue 14): a Tasmota plug with `PulseTime` and `PowerOnState`, and a
//! Shelly Gen2 switch speaking JSON-RPC with `toggle_after` and
//! `Switch.SetConfig`. Each is a test-side rumqttc client on a real broker;
//! its timer runs in the test process, on tokio's clock, whether or not
//! anyone talks to it, as a device's would.
//!
//! Behaviour modelled on the firmware documentation:
//! - Tasmota: `PulseTime<n>` 1..=111 means n/10 s, 112..=64900 means n−100
//!   s; turning the relay on arms the timer; setting `PulseTime` while the
//!   relay is on re-arms it; at expiry the relay goes off and
//!   `stat/<t>/POWER` says `OFF`.
//! - Shelly Gen2: `Switch.Set {id, on, toggle_after}` sets the output and,
//!   with `toggle_after`, flips it back after that many seconds;
//!   `NotifyStatus` with `switch:0.output` on `<id>/events/rpc` after every
//!   change; replies on `<src>/rpc`; `<id>/online` true/false (last will).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Incoming, LastWill, MqttOptions, QoS};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a fake device holds, shared with the test.
#[derive(Debug, Default, Clone)]
pub struct DeviceState {
    /// The relay / switch output.
    pub on: bool,
    /// When the device's own timer switches it (off for Tasmota, flips for Shelly).
    pub timer: Option<Instant>,
    /// Tasmota `PulseTime` setting.
    pub pulse_time: Option<u32>,
    /// Tasmota `PowerOnState` / Shelly `initial_state`, as received.
    pub power_on: Option<String>,
    /// Every (topic, payload) received, in order.
    pub received: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tasmota,
    ShellyGen2,
}

/// A fake Tasmota plug or Shelly Gen2 switch; stops when dropped.
pub struct FakeFirmware {
    state: Arc<Mutex<DeviceState>>,
    stop: CancellationToken,
}

impl Drop for FakeFirmware {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeFirmware {
    /// A Tasmota plug with device topic `topic`, subscribed on return.
    pub async fn tasmota(port: u16, topic: &str) -> Self {
        Self::start(port, Kind::Tasmota, topic).await
    }

    /// A Shelly Gen2 switch with device id `id`, subscribed on return.
    pub async fn shelly_gen2(port: u16, id: &str) -> Self {
        Self::start(port, Kind::ShellyGen2, id).await
    }

    /// Sets the output silently, as if it changed while nobody listened
    /// (switched by hand before borne connected): only a status request
    /// tells borne.
    pub fn set_on_unannounced(&self, on: bool) {
        self.state.lock().unwrap().on = on;
    }

    /// A copy of the device's state.
    pub fn state(&self) -> DeviceState {
        self.state.lock().unwrap().clone()
    }

    async fn start(port: u16, kind: Kind, id: &str) -> Self {
        let (will_topic, offline, online, subscription) = match kind {
            Kind::Tasmota => (format!("tele/{id}/LWT"), "Offline", "Online", format!("cmnd/{id}/+")),
            Kind::ShellyGen2 => (format!("{id}/online"), "false", "true", format!("{id}/rpc")),
        };
        let mut options = MqttOptions::new(format!("firmware-{id}-{}", std::process::id()), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_last_will(LastWill::new(will_topic.clone(), offline, QoS::AtLeastOnce, true));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let state = Arc::new(Mutex::new(DeviceState::default()));
        let stop = CancellationToken::new();
        let ready = Arc::new(tokio::sync::Notify::new());
        let (st, stp, rdy, id) = (Arc::clone(&state), stop.clone(), Arc::clone(&ready), id.to_owned());
        tokio::spawn(async move {
            loop {
                let timer = st.lock().unwrap().timer;
                let expiry = async {
                    match timer {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                let event = tokio::select! {
                    () = stp.cancelled() => return,
                    () = expiry => {
                        let on = {
                            let mut s = st.lock().unwrap();
                            s.timer = None;
                            s.on = match kind { Kind::Tasmota => false, Kind::ShellyGen2 => !s.on };
                            s.on
                        };
                        report(&client, kind, &id, on, "timer");
                        continue;
                    }
                    e = eventloop.poll() => e,
                };
                match event {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        let _ = client.try_subscribe(subscription.clone(), QoS::AtLeastOnce);
                        let _ = client.try_publish(will_topic.clone(), QoS::AtLeastOnce, true, online);
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => rdy.notify_one(),
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let text = String::from_utf8_lossy(&p.payload).into_owned();
                        let changed = {
                            let mut s = st.lock().unwrap();
                            s.received.push((p.topic.clone(), text.clone()));
                            match kind {
                                Kind::Tasmota => tasmota_command(&mut s, &p.topic, &text),
                                Kind::ShellyGen2 => shelly_rpc(&mut s, &client, &id, &text),
                            }
                        };
                        if let Some(on) = changed {
                            report(&client, kind, &id, on, "MQTT");
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        tokio::select! {
                            () = stp.cancelled() => return,
                            () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(20), ready.notified())
            .await
            .expect("the fake firmware subscribed");
        FakeFirmware { state, stop }
    }
}

/// Seconds of a Tasmota `PulseTime` value.
fn pulse_seconds(v: u32) -> Option<Duration> {
    match v {
        0 => None,
        1..=111 => Some(Duration::from_millis(u64::from(v) * 100)),
        _ => Some(Duration::from_secs(u64::from(v.min(64_900)) - 100)),
    }
}

/// Applies a Tasmota command; returns the relay state to report if it was a POWER command.
fn tasmota_command(s: &mut DeviceState, topic: &str, text: &str) -> Option<bool> {
    let command = topic.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    match command.as_str() {
        "power" => {
            let on = match text.to_ascii_uppercase().as_str() {
                "ON" | "1" => true,
                "OFF" | "0" => false,
                _ => return None,
            };
            s.on = on;
            s.timer = if on {
                s.pulse_time.and_then(pulse_seconds).map(|d| Instant::now() + d)
            } else {
                None
            };
            Some(on)
        }
        "pulsetime" => {
            let v: u32 = text.trim().parse().ok()?;
            s.pulse_time = Some(v);
            // Setting PulseTime while the relay is on re-arms the running timer.
            if s.on {
                s.timer = pulse_seconds(v).map(|d| Instant::now() + d);
            }
            None
        }
        "poweronstate" => {
            s.power_on = Some(text.trim().to_owned());
            None
        }
        _ => None,
    }
}

/// Applies a Shelly Gen2 RPC request; returns the output to notify if it changed.
fn shelly_rpc(s: &mut DeviceState, client: &AsyncClient, id: &str, text: &str) -> Option<bool> {
    let request: Value = serde_json::from_str(text).ok()?;
    let src = request["src"].as_str().unwrap_or("unknown").to_owned();
    let params = &request["params"];
    let (result, changed) = match request["method"].as_str()? {
        "Switch.Set" => {
            let was_on = s.on;
            s.on = params["on"].as_bool()?;
            s.timer = params["toggle_after"]
                .as_f64()
                .map(|secs| Instant::now() + Duration::from_secs_f64(secs));
            (json!({"was_on": was_on}), Some(s.on))
        }
        "Switch.SetConfig" => {
            s.power_on = params["config"]["initial_state"].as_str().map(str::to_owned);
            (json!({"restart_required": false}), None)
        }
        "Switch.GetStatus" => (json!({"id": 0, "output": s.on}), None),
        _ => return None,
    };
    let reply = json!({"id": request["id"], "src": id, "dst": src, "result": result});
    let _ = client.try_publish(format!("{src}/rpc"), QoS::AtLeastOnce, false, reply.to_string());
    changed
}

/// What the device says after a change.
fn report(client: &AsyncClient, kind: Kind, id: &str, on: bool, source: &str) {
    let (topic, payload) = match kind {
        Kind::Tasmota => (format!("stat/{id}/POWER"), if on { "ON" } else { "OFF" }.to_owned()),
        Kind::ShellyGen2 => (
            format!("{id}/events/rpc"),
            json!({"src": id, "dst": format!("{id}/events"), "method": "NotifyStatus",
                   "params": {"switch:0": {"id": 0, "output": on, "source": source}}})
            .to_string(),
        ),
    };
    let _ = client.try_publish(topic, QoS::AtLeastOnce, false, payload);
}
