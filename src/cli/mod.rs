//! The offline commands, one file each: `calendar`, `check`, `db`, `plan`, `report` and `token`. Each one
//! is a function from its arguments to the text it prints, so tests call them
//! without spawning the binary.

mod calendar;
mod check;
mod db;
pub mod inventory;
mod plan;
mod report;
mod token;

pub use calendar::calendar_show;
pub use check::{summary, warnings};
pub use db::db_migrate;
pub use plan::{PlanOptions, plan_at, plan_interval};
pub use report::{render as render_report, report_rows};
pub use token::{new_token, token_entry, token_list, token_sha256};
