//! Redis servers and data that are not what we expect: a wrong password, nobody listening, a
//! server that is not Redis, garbage written into a group hash by someone else. Each gives a
//! clear error naming the problem (never a password), or skips the one bad entry; none panics.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use redis_server::{Server, free_port, have_redis_server};
use tooz::{Coordinator, Error, MemberId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_error_without_the_password() {
    if !have_redis_server() {
        return eprintln!("redis-server is not installed: skipping");
    }
    let server = Server::start_with(free_port(), &["--requirepass", "right-one"]);
    let url = format!("redis://:hunter2@127.0.0.1:{}?timeout=2", server.port);
    let err = Coordinator::connect(&url, "m").await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.to_lowercase().contains("pass"),
        "names the problem: {text}"
    );
    let ok = format!("redis://:right-one@127.0.0.1:{}?timeout=2", server.port);
    Coordinator::connect(&ok, "m")
        .await
        .unwrap()
        .stop()
        .await
        .unwrap();
}

#[tokio::test]
async fn nobody_listening_is_a_connection_error_in_bounded_time() {
    let started = Instant::now();
    let err = Coordinator::connect("redis://127.0.0.1:1?socket_connect_timeout=2", "m")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_redis_is_an_error_in_bounded_time() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 256];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let started = Instant::now();
    let url = format!("redis://user:canary-s3cret@127.0.0.1:{port}?timeout=2");
    let err = Coordinator::connect(&url, "m").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let shown = format!("{err} / {err:?}");
    println!("a web server where Redis was expected: {err}");
    assert!(
        shown.contains("does not answer like a Redis server")
            && shown.contains(&format!("127.0.0.1:{port}")),
        "the error says what is wrong and where: {shown}"
    );
    assert!(!shown.contains("canary-s3cret"), "no password: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_a_group_hash_skips_that_member_only() {
    if !have_redis_server() {
        return eprintln!("redis-server is not installed: skipping");
    }
    let server = Server::start(free_port());
    let url = format!("redis://127.0.0.1:{}?timeout=5", server.port);
    let coord = Coordinator::connect(&url, "good").await.unwrap();
    coord
        .join_group_create("g", serde_json::json!({"ok": true}))
        .await
        .unwrap();
    // Someone else writes an entry that is not msgpack, with a live beat key.
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("HSET")
        .arg("_tooz_group:g")
        .arg("intruder")
        .arg(b"\xc1\xff\x00".as_slice())
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("_tooz_beats:intruder")
        .arg("Not dead!")
        .query_async(&mut raw)
        .await
        .unwrap();

    let members = coord.members_with_capabilities("g").await.unwrap();
    assert_eq!(
        members.keys().collect::<Vec<_>>(),
        vec![&MemberId::from("good")]
    );
    let err = coord
        .member_capabilities("g", "intruder")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Serialization { .. }), "{err:?}");
    // The entry itself is left alone: it is someone else's.
    let still: bool = redis::cmd("HEXISTS")
        .arg("_tooz_group:g")
        .arg("intruder")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(still);
    coord.stop().await.unwrap();
}
