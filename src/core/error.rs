//! Why a state-changing request was refused or failed.

use chrono_tz::Tz;

use crate::policy::Refusal;
use crate::store::StoreError;

/// A refused or failed state-changing request.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No such classroom or school (or not visible to the user: same
    /// answer, so ids cannot be probed). The sentence says which.
    #[error("{0}")]
    NotFound(String),
    /// The user may see it but not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The policy refused the request; times are shown in the time zone.
    #[error("{0}")]
    Refused(Refusal, Tz),
    /// The request is malformed in a way only the core can tell.
    #[error("{0}")]
    Invalid(String),
    /// `clock.require_sync` is set and the clock is not synchronised: no
    /// new "on" is accepted.
    #[error("the server clock is not synchronised: no new \"on\" until it is")]
    ClockUnsynchronized,
    /// The change could not be stored, so it was not made.
    #[error("the request was not applied: {0}")]
    Store(#[from] StoreError),
}

/// The machine code of a refusal, as the API and the audit log spell it.
pub fn refusal_code(r: &Refusal) -> &'static str {
    match r {
        Refusal::Locked { .. } => "locked",
        Refusal::Overridden(_) => "overridden",
        Refusal::MinutesOutOfRange { .. } => "minutes_out_of_range",
    }
}
