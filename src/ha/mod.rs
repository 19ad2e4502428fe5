//! Several instances on one PostgreSQL database, one of them leading
//! (issue 17): every instance serves the API and the pages; only the
//! leader runs the reconciler and talks to access points.
//!
//! - [`leadership`]: a session-level advisory lock on a session of its
//!   own; followers try it every second; the leader checks it every
//!   second and ends its [`Term`] when it cannot confirm it within the
//!   lease.
//! - [`fence`]: what every driver operation asks first (the lease, on the
//!   monotonic clock), so a leader that was frozen drives nothing before
//!   it has confirmed its lock again.
//! - [`listen`]: `LISTEN borne_changes`, turned into [`Change`]s for the
//!   daemon to reload from the store.
//! - [`heartbeat`]: each instance's row in `borne_instances` (role,
//!   configuration hash), read back into the [`Cluster`] view.
//! - [`session`]: the dedicated sessions these need, outside the store's pool.
//!
//! Place in the flow: beside `store`, below `core`. It knows nothing of
//! classrooms' states: the daemon wires terms to the reconciler and
//! changes to the core.

pub mod cluster;
pub mod fence;
pub mod heartbeat;
pub mod leadership;
pub mod listen;
pub mod session;

pub use cluster::{Cluster, Instance, Role};
pub use fence::{Fence, Fenced};
pub use leadership::{LeaderMetrics, Leadership, Term};
pub use listen::Change;
pub use session::{Connect, Session};
