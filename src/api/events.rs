//! `GET /api/v1/events`: Server-Sent Events, one `status` event per change
//! of a classroom the token may see, so pages update without polling.
//!
//! The stream starts with the current status of every visible classroom
//! (so a page that reconnects after a drop is up to date at once), then
//! follows the core's announcements. A client too slow to keep up gets a
//! full refresh instead of an error. It ends at shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::AppState;
use super::auth::Auth;
use crate::core::Status;

fn event(status: &Status) -> Option<Event> {
    Event::default().event("status").json_data(status).ok()
}

/// The event stream.
pub async fn stream(State(state): State<AppState>, auth: Auth) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let user = auth.user;
    let core = state.core.clone();
    // Subscribe before reading the snapshot, so no change falls between.
    let changes = BroadcastStream::new(core.subscribe());
    let initial: Vec<Event> = core.statuses(&user).iter().filter_map(event).collect();
    let follow_core = core.clone();
    let follow_user = user.clone();
    let follow = changes.flat_map(move |msg| {
        let events: Vec<Event> = match msg {
            Ok(classroom) if follow_user.can_see(&classroom) => follow_core
                .status(&follow_user, classroom.as_str())
                .ok()
                .as_ref()
                .and_then(event)
                .into_iter()
                .collect(),
            Ok(_) => Vec::new(),
            Err(BroadcastStreamRecvError::Lagged(_)) => {
                follow_core.statuses(&follow_user).iter().filter_map(event).collect()
            }
        };
        stream::iter(events)
    });
    let shutdown = state.shutdown.clone();
    let s = stream::iter(initial)
        .chain(follow)
        .map(Ok)
        .take_until(async move { shutdown.cancelled().await });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
