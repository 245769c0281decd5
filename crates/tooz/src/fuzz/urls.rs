//! Hostile URLs of every scheme with a canary password, plain or percent-encoded: it must
//! never show in any Debug, Display or error text, nor in a captured log line.

use super::*;

/// The canary as a percent-encoded password shows it, when a URL is echoed undecoded.
const CANARY_ENCODED: &str = "%43%41%4E%41%52%59";

/// Whether `text` shows a canary, plain or percent-encoded (in either case of hex digits).
fn shows_canary(text: &str) -> bool {
    text.contains(CANARY) || text.to_ascii_uppercase().contains(CANARY_ENCODED)
}

#[rustfmt::skip]
const ODD_SCHEMES: &[&str] = &[
    "gopher", "REDIS", "memcache", "zk", "etcd3", "http", "x-y", "1abc", "",
];
/// User names: none ends the authority ('/', '?', '#') or starts the password (':'), so the
/// canary after them is a password by URL syntax in every URL made.
#[rustfmt::skip]
const USERS: &[&str] = &[
    "", "u", "user", "a@b", "é", "%41", "%", " ", "[", "admin", "u=1",
];
/// Around the canary in userinfo; again nothing that ends the authority.
#[rustfmt::skip]
const AROUND: &[&str] = &[
    "", "", "@", ":", "%", "%4", "%zz", " ", "é", "\u{1F600}", "[", "]", ",", "=", "&", ";", "+",
    "!", "$", "'", "*", "\"", "<", ">", "`", "{", "|", "}", "^", "\t", "%40",
];
/// Around the canary in a query value: no '&' or '#', which would make it another option or
/// a fragment rather than the secret option's value.
#[rustfmt::skip]
const AROUND_QUERY: &[&str] = &[
    "", "", " ", "+", "%", "%zz", "é", "=", ":", "@", "/", "?", ";", ",", "%26",
];
/// Hosts: no '?' or '#', which would turn the options after them into something else.
#[rustfmt::skip]
const HOSTS: &[&str] = &[
    "h", "localhost", "127.0.0.1", "[::1]", "[::1", "::1", "ex ample", "h%41", "é", "xn--a", "a@b",
    "h,h2:1", "h,,", "[", "%", "999.1.1.1", "0x7f.1", "H", "h.", ".", "..", "_", "-h", "h:1:2", "",
    "/", "h/x", "<", "^", "|", "\0",
];
#[rustfmt::skip]
const PORTS: &[&str] = &[
    "", "", "", ":0", ":1", ":2181", ":65535", ":65536", ":99999", ":-1", ":abc", ":", ":080",
];
#[rustfmt::skip]
const PATHS: &[&str] = &[
    "", "", "/", "/x", "/0", "/15", "/a/b", "/../..", "/%2e%2e", "//", "/x y", "/%00", "/tooz",
    "/a%2Fb", "/é", "/%ff", "/.", "/tmp/tooz-fuzz",
];
/// Options of every driver (none that reads a file, which a random value would make I/O),
/// and some of none.
#[rustfmt::skip]
const OPTIONS: &[&str] = &[
    "timeout", "membership_timeout", "lock_timeout", "leader_timeout", "namespace", "db",
    "sentinel", "sentinel_fallback", "sentinel_username", "sentinel_ssl", "endpoints", "hosts",
    "host", "port", "dbname", "user", "sslmode", "table_prefix", "tooz_lock_keys", "executor",
    "max_pool_size", "use_ssl", "unix_socket", "ssl", "groups", "elections", "shared_locks",
    "randomize_hosts", "verify_certs", "encoding", "api_version", "handler", "bogus", "", "a b",
    "%zz",
];
#[rustfmt::skip]
const VALUES: &[&str] = &[
    "", "1", "0", "2", "2.5", "10ms", "-1", "1e400", "NaN", "true", "false", "maybe", "h:1",
    "h1:2,h2:3", "[::1]:1", "x", "/x", "%", "%zz", "a b", "prefer", "require", "verify-full",
    "disable", "allow", "é", "99999999999999999999", "tooz_", "UPPER", "%00", "utf8", "m",
    "3153600001",
];
/// Options whose value is a secret (by the crate's rule: the name holds password, passwd,
/// secret or token), known to some driver or to none.
#[rustfmt::skip]
const SECRET_OPTIONS: &[&str] = &[
    "password", "sentinel_password", "ssl_key_password", "keyfile_password", "passwd", "secret",
    "token", "api_token", "PASSWORD",
];
const FRAGMENTS: &[&str] = &["#", "#f", "#a@b", "#?x"];

/// The canary as a password or secret value: as it is between hostile characters, or wholly
/// percent-encoded (then the literal appears only if something decodes it and shows it).
fn secret(rng: &mut Rng, around: &[&str]) -> String {
    let canary = format!("{CANARY}{}", rng.next_u64() % 1_000_000_000);
    if rng.chance(4) {
        canary.bytes().map(|b| format!("%{b:02X}")).collect()
    } else {
        format!("{}{canary}{}", rng.pick(around), rng.pick(around))
    }
}

fn hostile_url(rng: &mut Rng) -> String {
    let scheme = if rng.chance(16) {
        rng.pick(ODD_SCHEMES)
    } else {
        let registration = rng.pick(REGISTRATIONS);
        rng.pick(registration.schemes)
    };
    let mut url = format!("{scheme}://");
    if !rng.chance(4) {
        url.push_str(rng.pick(USERS));
        url.push(':');
        url.push_str(&secret(rng, AROUND));
        url.push('@');
    }
    for i in 0..1 + usize::from(rng.chance(4)) * rng.below(3) {
        if i > 0 {
            url.push(',');
        }
        if rng.chance(32) {
            url.push_str(&"a".repeat(rng.below(300)));
        } else {
            url.push_str(rng.pick(HOSTS));
        }
        url.push_str(rng.pick(PORTS));
    }
    url.push_str(rng.pick(PATHS));
    for i in 0..rng.below(5) {
        url.push(if i == 0 { '?' } else { '&' });
        if rng.chance(3) {
            url.push_str(rng.pick(SECRET_OPTIONS));
            url.push('=');
            url.push_str(&secret(rng, AROUND_QUERY));
        } else {
            url.push_str(rng.pick(OPTIONS));
            if !rng.chance(8) {
                url.push('=');
                url.push_str(rng.pick(VALUES));
            }
        }
    }
    if rng.chance(8) {
        url.push_str(rng.pick(FRAGMENTS));
    }
    url
}

/// An error's Display, Debug and every source's Display.
fn error_texts(error: &Error) -> Vec<(&'static str, String)> {
    let mut texts = vec![
        ("error", error.to_string()),
        ("error Debug", format!("{error:?}")),
    ];
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        texts.push(("error source", inner.to_string()));
        source = inner.source();
    }
    texts
}

/// The options a scheme's driver reads from `url`, shown (`None`: no driver built for it).
fn options_shown(url: &Url) -> Option<crate::Result<String>> {
    Some(match url.scheme() {
        "memory" => MemoryOptions::from_url(url).map(|o| format!("{o:?}")),
        #[cfg(feature = "file")]
        "file" => crate::drivers::file::FileOptions::from_url(url).map(|o| format!("{o:?}")),
        #[cfg(feature = "redis")]
        "redis" | "rediss" => {
            crate::drivers::redis::RedisOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "memcached")]
        "memcached" => {
            crate::drivers::memcached::MemcachedOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "etcd")]
        "etcd3+http" | "etcd3+https" | "etcd" => {
            crate::drivers::etcd::EtcdOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "zookeeper")]
        "zookeeper" | "kazoo" => {
            crate::drivers::zookeeper::ZookeeperOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "postgres")]
        "postgresql" | "postgres" => {
            crate::drivers::postgres::PostgresOptions::from_url(url).map(|o| format!("{o:?}"))
        }
        #[cfg(feature = "mysql")]
        "mysql" => crate::drivers::mysql::MysqlOptions::from_url(url).map(|o| format!("{o:?}")),
        _ => return None,
    })
}

/// Everything a URL can be shown through without a server: the redaction itself, the
/// backend `open` builds (it only reads options: no connection is made before `start`) or
/// its error, a builder's Debug, the driver's options; and for `memory://`, where nothing is
/// remote, a whole connect and stop (`runtime` given), for the log lines they write.
fn check_url(tally: &mut Tally, url: &str, runtime: Option<&tokio::runtime::Runtime>) {
    let mut shown = vec![("redacted", redact_str(url))];
    match crate::scheme::open(url, &MemberId::from("m")) {
        Ok(backend) => shown.push(("backend Debug", format!("{backend:?}"))),
        Err(e) => shown.extend(error_texts(&e)),
    }
    shown.push((
        "builder Debug",
        format!("{:?}", Coordinator::builder(url, "m")),
    ));
    if let Ok(parsed) = Url::parse(&split_host_list(url)) {
        match options_shown(&parsed) {
            Some(Ok(options)) => shown.push(("options Debug", options)),
            Some(Err(e)) => shown.extend(error_texts(&e)),
            None => {}
        }
        // (A `latency` would make the connect sleep; no option pool holds it, but be sure.)
        if let Some(runtime) = runtime
            && parsed.scheme() == "memory"
            && MemoryOptions::from_url(&parsed).is_ok_and(|o| o.latency.is_zero())
        {
            let connect = async {
                let coordinator = Coordinator::builder(url, "m")
                    .operation_timeout(Duration::from_secs(5))
                    .connect()
                    .await?;
                let debug = format!("{coordinator:?}");
                coordinator.stop().await?;
                Ok::<_, Error>(debug)
            };
            // (The timer is made inside the runtime: outside, there is none to make it on.)
            let outcome = runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), connect).await });
            match outcome {
                Ok(Ok(debug)) => shown.push(("coordinator Debug", debug)),
                Ok(Err(e)) => shown.extend(error_texts(&e)),
                Err(_) => tally.note(format!("connecting to {url:?} timed out (not counted)")),
            }
        }
    }
    for (what, text) in shown {
        if shows_canary(&text) {
            tally.leak(format!("{what} of {url:?}: {text}"));
        }
    }
}

/// Everything the log subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn urls_never_show_a_password() {
    let (mut rng, seed) = setup("urls");
    let mut tally = Tally::default();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..cases() {
            let url = hostile_url(&mut rng);
            // Connecting costs far more than reading a URL: one case in 32 is plenty.
            let runtime = rng.chance(32).then_some(&runtime);
            tally.case(|tally| check_url(tally, &url, runtime));
        }
    });
    drop(runtime);
    let logged = captured.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for line in String::from_utf8_lossy(&logged).lines() {
        if shows_canary(line) {
            tally.leak(format!("log line: {line}"));
        }
    }
    tally.finish("urls", seed);
}
