//! A dedicated PostgreSQL session (outside the store's pool): the
//! leadership lock and `LISTEN` each need one that lives as long as they
//! do. The connection task is driven here and its notifications forwarded,
//! so the rest of the module never names the transport's types.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Connection};

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
    /// Drives `connection` on the current runtime.
    pub fn new<S, T>(client: Client, mut connection: Connection<S, T>) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, notices) = mpsc::unbounded_channel();
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let why = loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        let _ = tx.send(Notice {
                            channel: n.channel().to_owned(),
                            payload: n.payload().to_owned(),
                        });
                    }
                    Some(Ok(AsyncMessage::Notice(n))) => {
                        tracing::debug!(message = n.message(), "PostgreSQL notice");
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break e.to_string(),
                    None => break "connection closed".to_owned(),
                }
            };
            let _ = closed_tx.send(why);
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
        // Closing the socket at once is what releases a session-level
        // advisory lock on the server side.
        self.task.abort();
    }
}
