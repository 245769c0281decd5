//! The backends, one module each, each behind its own cargo feature (`memory` is always on).

pub mod memory;
