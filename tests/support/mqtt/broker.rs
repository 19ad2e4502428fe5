//! `ScriptedBroker`: a small in-process MQTT 3.1.1 broker for tests that
//! must run on a machine with only Rust (no Mosquitto).
//!
//! Why not `rumqttd`: its `Broker::start` blocks forever on threads of its
//! own with no way to stop it or learn a port-0 address, and it would pull
//! a second TLS stack (tokio-rustls 0.25 / rustls 0.22), axum 0.7 and a
//! metrics exporter into the build. This one speaks real MQTT on a real
//! socket (packets encoded and decoded by rumqttc's own `mqttbytes` codec),
//! binds `127.0.0.1:0`, reports its port, stops on demand and restarts on
//! the same port.
//!
//! What it does: CONNECT/CONNACK (any client id, no authentication),
//! SUBSCRIBE with `+`/`#` filters (granted QoS 0: deliveries are QoS 0,
//! which MQTT allows), UNSUBSCRIBE, PUBLISH at QoS 0/1/2 from clients with
//! the PUBACK or PUBREC/PUBREL/PUBCOMP handshake, retained messages (lost
//! on stop, like Mosquitto with `persistence false`), last wills on an
//! abnormal disconnect, PINGREQ, DISCONNECT. Scripting: [`ScriptedBroker::set_ack_publishes`]
//! makes it swallow PUBACK/PUBREC (to test timeouts), [`ScriptedBroker::set_ack_delay`]
//! sends them late (a command in flight at shutdown), and it records
//! every PUBLISH it receives ([`ScriptedBroker::published`]) and every clean
//! DISCONNECT ([`ScriptedBroker::clean_disconnects`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::{self, matches};
use rumqttc::{
    ConnAck, ConnectReturnCode, LastWill, Packet, PubAck, PubComp, PubRec, Publish, QoS, SubAck, SubscribeReasonCode,
    UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::wait::{TIMEOUT, wait_for_at_most};

/// Largest packet accepted (the tests send 1 MiB payloads).
const MAX_PACKET: usize = 16 << 20;

/// One PUBLISH received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// Its QoS.
    pub qos: QoS,
    /// Its retain flag.
    pub retain: bool,
}

#[derive(Default)]
struct State {
    /// Connected clients: id → (outgoing packets, subscription filters).
    clients: HashMap<u64, (mpsc::UnboundedSender<Packet>, Vec<String>)>,
    retained: HashMap<String, Publish>,
    published: Vec<Received>,
    clean_disconnects: Vec<String>,
    /// False: swallow PUBACK/PUBREC to QoS 1/2 publishes.
    no_acks: bool,
    /// PUBACK/PUBREC are sent this long after the PUBLISH.
    ack_delay: Duration,
    next_id: u64,
}

/// The in-process broker. Stops when dropped.
pub struct ScriptedBroker {
    port: u16,
    state: Arc<Mutex<State>>,
    /// Cancelled by `stop`: ends the accept loop and every connection.
    stop: CancellationToken,
}

impl ScriptedBroker {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, Arc::clone(&state), stop.clone()));
        Self { port, state, stop }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes the listener and every connection at once (no will is sent:
    /// the broker is what went away). Retained messages are lost.
    pub fn stop(&mut self) {
        self.stop.cancel();
        let mut s = self.state.lock().unwrap();
        s.clients.clear();
        s.retained.clear();
    }

    /// Starts again on the same port (waiting for it to be free).
    pub async fn restart(&mut self) {
        self.stop();
        let addr = format!("127.0.0.1:{}", self.port);
        let mut listener = None;
        wait_for_at_most("the scripted broker's port to be free", TIMEOUT, || {
            listener = std::net::TcpListener::bind(&addr).ok();
            listener.is_some()
        })
        .await;
        let listener = listener.expect("bound above");
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        self.stop = CancellationToken::new();
        tokio::spawn(accept(listener, Arc::clone(&self.state), self.stop.clone()));
    }

    /// Whether QoS 1/2 publishes are acknowledged (default true).
    pub fn set_ack_publishes(&self, ack: bool) {
        self.state.lock().unwrap().no_acks = !ack;
    }

    /// Sends PUBACK/PUBREC `delay` after each PUBLISH instead of at once
    /// (a slow broker: a command stays in flight that long).
    pub fn set_ack_delay(&self, delay: Duration) {
        self.state.lock().unwrap().ack_delay = delay;
    }

    /// Every PUBLISH received from clients so far, oldest first.
    pub fn published(&self) -> Vec<Received> {
        self.state.lock().unwrap().published.clone()
    }

    /// Client ids that sent DISCONNECT before closing.
    pub fn clean_disconnects(&self) -> Vec<String> {
        self.state.lock().unwrap().clean_disconnects.clone()
    }

    /// Number of connected clients.
    pub fn client_count(&self) -> usize {
        self.state.lock().unwrap().clients.len()
    }
}

impl Drop for ScriptedBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept(listener: TcpListener, state: Arc<Mutex<State>>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&state), stop.clone()));
            }
        }
    }
}

/// Routes a publish to every matching subscriber (QoS 0 delivery).
fn route(state: &mut State, publish: &Publish) {
    if publish.retain {
        if publish.payload.is_empty() {
            state.retained.remove(&publish.topic);
        } else {
            state.retained.insert(publish.topic.clone(), publish.clone());
        }
    }
    let mut out = Publish::from_bytes(publish.topic.clone(), QoS::AtMostOnce, publish.payload.clone());
    // Live deliveries carry retain = false (MQTT-3.3.1-9).
    out.retain = false;
    for (tx, filters) in state.clients.values() {
        if filters.iter().any(|f| matches(&publish.topic, f)) {
            let _ = tx.send(Packet::Publish(out.clone()));
        }
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>, stop: CancellationToken) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Packet>();
    let id = {
        let mut s = state.lock().unwrap();
        s.next_id += 1;
        s.next_id
    };
    let mut client_id = String::new();
    let mut will: Option<LastWill> = None;
    let mut clean = false;
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = BytesMut::with_capacity(4096);
    'conn: loop {
        tokio::select! {
            () = stop.cancelled() => {
                // The broker goes away: no will.
                will = None;
                break 'conn;
            }
            Some(packet) = rx.recv() => {
                out.clear();
                if packet.write(&mut out, MAX_PACKET).is_err() || stream.write_all(&out).await.is_err() {
                    break 'conn;
                }
            }
            read = stream.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break 'conn,
                    Ok(_) => {}
                }
                loop {
                    let packet = match Packet::read(&mut buf, MAX_PACKET) {
                        Ok(p) => p,
                        Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                        Err(_) => break 'conn, // malformed: drop the client
                    };
                    let mut replies = Vec::new();
                    {
                        let mut s = state.lock().unwrap();
                        match packet {
                            Packet::Connect(c) => {
                                client_id = c.client_id.clone();
                                will = c.last_will.clone();
                                s.clients.insert(id, (tx.clone(), Vec::new()));
                                replies.push(Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)));
                            }
                            Packet::Publish(p) => {
                                s.published.push(Received {
                                    topic: p.topic.clone(),
                                    payload: p.payload.to_vec(),
                                    qos: p.qos,
                                    retain: p.retain,
                                });
                                let ack = match p.qos {
                                    _ if s.no_acks => None,
                                    QoS::AtMostOnce => None,
                                    QoS::AtLeastOnce => Some(Packet::PubAck(PubAck::new(p.pkid))),
                                    QoS::ExactlyOnce => Some(Packet::PubRec(PubRec::new(p.pkid))),
                                };
                                match ack {
                                    Some(ack) if !s.ack_delay.is_zero() => {
                                        let (tx, delay) = (tx.clone(), s.ack_delay);
                                        tokio::spawn(async move {
                                            tokio::time::sleep(delay).await;
                                            let _ = tx.send(ack);
                                        });
                                    }
                                    Some(ack) => replies.push(ack),
                                    None => {}
                                }
                                route(&mut s, &p);
                            }
                            Packet::PubRel(r) => replies.push(Packet::PubComp(PubComp::new(r.pkid))),
                            Packet::Subscribe(sub) => {
                                let codes = sub
                                    .filters
                                    .iter()
                                    .map(|_| SubscribeReasonCode::Success(QoS::AtMostOnce))
                                    .collect();
                                replies.push(Packet::SubAck(SubAck::new(sub.pkid, codes)));
                                for f in &sub.filters {
                                    for r in s.retained.values() {
                                        if matches(&r.topic, &f.path) {
                                            let mut m = Publish::from_bytes(r.topic.clone(), QoS::AtMostOnce, r.payload.clone());
                                            m.retain = true;
                                            replies.push(Packet::Publish(m));
                                        }
                                    }
                                }
                                if let Some((_, filters)) = s.clients.get_mut(&id) {
                                    filters.extend(sub.filters.iter().map(|f| f.path.clone()));
                                }
                            }
                            Packet::Unsubscribe(u) => {
                                if let Some((_, filters)) = s.clients.get_mut(&id) {
                                    filters.retain(|f| !u.topics.contains(f));
                                }
                                replies.push(Packet::UnsubAck(UnsubAck::new(u.pkid)));
                            }
                            Packet::PingReq => replies.push(Packet::PingResp),
                            Packet::Disconnect => {
                                clean = true;
                                s.clean_disconnects.push(client_id.clone());
                            }
                            // Acks of our QoS 0 deliveries cannot come; others are ignored.
                            _ => {}
                        }
                    }
                    for reply in replies {
                        out.clear();
                        if reply.write(&mut out, MAX_PACKET).is_err() || stream.write_all(&out).await.is_err() {
                            break 'conn;
                        }
                    }
                    if clean {
                        break 'conn;
                    }
                }
            }
        }
    }
    {
        let mut s = state.lock().unwrap();
        s.clients.remove(&id);
        if let (false, Some(w)) = (clean, will) {
            let mut p = Publish::from_bytes(w.topic, w.qos, w.message);
            p.retain = w.retain;
            route(&mut s, &p);
        }
    }
    // A little grace so that the peer reads what was written before close.
    let _ = tokio::time::timeout(Duration::from_millis(50), stream.shutdown()).await;
}
