//! SSH driver (being written).
