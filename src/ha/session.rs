//! A dedicated PostgreSQL session (outside the store's pool): the
//! leadership lock and `LISTEN` each need one that lives as long as they
//! do. The store opens it ([`crate::store::postgres::PostgresStore::dedicated_connection`])
//! with its address, password and TLS; dropping the client closes it,
//! which is what releases a session-level lock on the server.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client};

/// Opens a new session (with the store's address, password and TLS).
pub type Connect = Arc<dyn Fn() -> BoxFuture<'static, Result<Session, String>> + Send + Sync>;

/// A notification: channel and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: String,
}

/// An open session.
pub struct Session {
    /// The client.
    pub client: Client,
    /// Notifications received on this session (`LISTEN`); ends when the
    /// connection does.
    pub notices: mpsc::UnboundedReceiver<Notice>,
    /// Ends when the connection ends (error, server gone, client dropped).
    pub closed: tokio::sync::oneshot::Receiver<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// A session over `client`, whose connection task forwards what the
    /// server sends unasked to `messages` (closed when the connection ends).
    pub fn new(client: Client, mut messages: mpsc::UnboundedReceiver<AsyncMessage>) -> Self {
        let (tx, notices) = mpsc::unbounded_channel();
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            while let Some(m) = messages.recv().await {
                match m {
                    AsyncMessage::Notification(n) => {
                        let _ = tx.send(Notice {
                            channel: n.channel().to_owned(),
                            payload: n.payload().to_owned(),
                        });
                    }
                    AsyncMessage::Notice(n) => tracing::debug!(message = n.message(), "PostgreSQL notice"),
                    _ => {}
                }
            }
            let _ = closed_tx.send("the connection ended".to_owned());
        });
        Self {
            client,
            notices,
            closed,
            task,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}
