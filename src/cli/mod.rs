//! The offline commands, one file each: `calendar`, `check`, `db`, `plan`, `report` and `token`
//! (with `token_csv` and `token_sheet` for the staff list and its printed sheets). Each one
//! is a function from its arguments to the text it prints, so tests call them
//! without spawning the binary.

mod calendar;
mod check;
mod db;
pub mod inventory;
mod plan;
mod report;
mod token;
pub mod token_csv;
pub mod token_sheet;

pub use calendar::calendar_show;
pub use check::{summary, warnings};
pub use db::db_migrate;
pub use plan::{PlanOptions, plan_at, plan_interval};
pub use report::{render as render_report, report_rows};
pub use token::{check_scope, new_token, sign_in_link, token_entry, token_list, token_sha256};
