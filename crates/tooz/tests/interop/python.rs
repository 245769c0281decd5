//! Which Python runs the interop tests.

/// The interpreter named by `TOOZ_PYTHON`; `None` (skip) unless `TOOZ_REQUIRE_INTEROP` is set,
/// in which case its absence fails the test.
pub(crate) fn python() -> Option<String> {
    match std::env::var("TOOZ_PYTHON") {
        Ok(python) => Some(python),
        Err(_) if std::env::var_os("TOOZ_REQUIRE_INTEROP").is_some() => {
            panic!("TOOZ_REQUIRE_INTEROP is set but TOOZ_PYTHON is not")
        }
        Err(_) => None,
    }
}
