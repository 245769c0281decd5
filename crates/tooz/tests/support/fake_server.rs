//! Servers that are not what the client expects, for the bad-input tests.

use std::io::{Read, Write};
use std::time::Duration;

/// A listener on a free loopback port that answers every connection with `answer` (after
/// reading what the client sent first), then closes it; `None` holds connections open and
/// silent.
pub(crate) fn fake_server(answer: Option<&'static [u8]>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            match answer {
                Some(answer) => {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                    let mut buf = [0u8; 512];
                    let _ = stream.read(&mut buf);
                    let _ = stream.write_all(answer);
                }
                None => held.push(stream),
            }
        }
    });
    port
}
