//! `GET /api/v1/events`: Server-Sent Events, one `status` event per change
//! of a classroom the token may see, so pages update without polling.
//!
//! The stream starts with the current status of every visible classroom
//! (so a page that reconnects after a drop is up to date at once), then
//! follows the core's announcements. A client too slow to keep up gets a
//! full refresh instead of an error. It ends at shutdown.
//!
//! A stream outlives the configuration it was opened under: at each
//! announcement (a reload announces every classroom) and every few seconds,
//! it looks its token up again in the configuration in force. A token no
//! longer there (user removed, token replaced) or past its `expires` day
//! ends the stream; otherwise
//! the user as now configured (its role and scope) decides what the stream
//! shows from then on (issue 12).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::future;
use futures_util::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, IntervalStream};

use super::AppState;
use super::auth::Auth;
use crate::config::{ClassroomId, Config, User};
use crate::core::{Core, Status};

/// How often a quiet stream checks that its token is still valid.
const RECHECK: Duration = Duration::from_secs(5);

fn event(status: &Status) -> Option<Event> {
    Event::default().event("status").json_data(status).ok()
}

/// What wakes the stream.
enum Wake {
    Change(Result<ClassroomId, BroadcastStreamRecvError>),
    Recheck,
}

/// The user a stream serves, as of the configuration last seen.
struct Subscriber {
    config: Arc<Config>,
    user: User,
}

impl Subscriber {
    /// Follows a reload: `false` when the token is gone or has expired.
    fn refresh(&mut self, core: &Core) -> bool {
        let config = core.config();
        if !Arc::ptr_eq(&config, &self.config) {
            let Some(user) = config.users.iter().find(|u| u.token_sha256 == self.user.token_sha256) else {
                tracing::info!(user = %self.user.name, "event stream closed: its token is no longer configured");
                return false;
            };
            self.user = user.clone();
            self.config = config;
        }
        if self.user.expired(core.now(), self.config.timezone) {
            tracing::info!(user = %self.user.name, "event stream closed: its token has expired");
            return false;
        }
        true
    }
}

/// The event stream.
pub async fn stream(State(state): State<AppState>, auth: Auth) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let core = state.core.clone();
    // Subscribe before reading the snapshot, so no change falls between.
    let changes = BroadcastStream::new(core.subscribe()).map(Wake::Change);
    let mut subscriber = Subscriber {
        config: core.config(),
        user: auth.user,
    };
    // The configuration may have changed between authentication and here.
    let initial: Vec<Event> = if subscriber.refresh(&core) {
        core.statuses(&subscriber.user).iter().filter_map(event).collect()
    } else {
        Vec::new()
    };
    let rechecks = IntervalStream::new(tokio::time::interval(RECHECK)).map(|_| Wake::Recheck);
    let follow = stream::select(changes, rechecks)
        .scan(subscriber, move |subscriber, wake| {
            if !subscriber.refresh(&core) {
                return future::ready(None);
            }
            let user = &subscriber.user;
            let events: Vec<Event> = match wake {
                Wake::Change(Ok(classroom)) if user.can_see(&classroom) => core
                    .status(user, classroom.as_str())
                    .ok()
                    .as_ref()
                    .and_then(event)
                    .into_iter()
                    .collect(),
                Wake::Change(Ok(_)) | Wake::Recheck => Vec::new(),
                Wake::Change(Err(BroadcastStreamRecvError::Lagged(_))) => {
                    core.statuses(user).iter().filter_map(event).collect()
                }
            };
            future::ready(Some(stream::iter(events)))
        })
        .flatten();
    let shutdown = state.shutdown.clone();
    let s = stream::iter(initial)
        .chain(follow)
        .map(Ok)
        .take_until(async move { shutdown.cancelled().await });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
