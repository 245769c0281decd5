//! The memcached server the tests may use: the `memcached://` URL in `TOOZ_TEST_URLS`. Where
//! `TOOZ_REQUIRE_INTEROP` is set (scripts/test, CI) its absence fails the test instead of
//! skipping it.

pub(crate) fn memcached_url() -> Option<String> {
    let urls = std::env::var("TOOZ_TEST_URLS").unwrap_or_default();
    let url = urls
        .split_whitespace()
        .find(|u| u.starts_with("memcached://"))
        .map(str::to_owned);
    if url.is_none() && std::env::var_os("TOOZ_REQUIRE_INTEROP").is_some() {
        panic!("TOOZ_REQUIRE_INTEROP is set but TOOZ_TEST_URLS names no memcached:// server");
    }
    url
}
