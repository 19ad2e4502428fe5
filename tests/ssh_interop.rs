//! placeholder
use russh as _;
