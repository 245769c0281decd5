//! Redis Sentinel: a coordinator that finds its master through a sentinel follows a failover
//! by itself. What it held on the old master is reported lost; afterwards it works on the new
//! master. Runs its own throw-away master, replica and sentinel on loopback ports.

#![cfg(feature = "redis")]

#[path = "support/redis_server.rs"]
mod redis_server;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis_server::{Server, free_port, have_redis_server};
use tokio::time::{Instant, sleep, timeout};
use tooz::{Capabilities, Coordinator};

/// A sentinel process, killed (by its own pid) when dropped.
struct Sentinel(Child);

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn ask(port: u16, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    cmd.query_async(&mut conn).await
}

async fn master_port(sentinel: u16) -> Option<u16> {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("get-master-addr-by-name").arg("mymaster");
    let reply = ask(sentinel, &cmd).await.ok()?;
    let (_, port): (String, u16) = redis::from_redis_value(reply).ok()?;
    Some(port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_is_followed_through_the_sentinel() {
    if !have_redis_server() {
        return eprintln!("redis-server is not installed: skipping");
    }
    let (a, b, s) = (free_port(), free_port(), free_port());
    let mut master = Server::start(a);
    let _replica = Server::start_with(b, &["--replicaof", "127.0.0.1", &a.to_string()]);
    let dir = std::env::temp_dir().join(format!("tooz-sentinel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {s}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {a} 1\n\
             sentinel down-after-milliseconds mymaster 500\nsentinel failover-timeout mymaster 2000\n",
            dir.display()
        ),
    )
    .unwrap();
    let _sentinel = Sentinel(
        Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel"),
    );
    // The sentinel must know the master and its replica before a failover can work.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut replicas = redis::cmd("SENTINEL");
        replicas.arg("replicas").arg("mymaster");
        let known = ask(s, &replicas)
            .await
            .ok()
            .and_then(|v| redis::from_redis_value::<Vec<redis::Value>>(v).ok());
        if master_port(s).await == Some(a) && known.is_some_and(|r| !r.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sentinel never learned the replica"
        );
        sleep(Duration::from_millis(100)).await;
    }

    let url = format!("redis://127.0.0.1:{s}?sentinel=mymaster&timeout=2");
    let coord = Coordinator::connect(&url, "follower").await.unwrap();
    let membership = coord
        .join_group_create("g", Capabilities::none())
        .await
        .unwrap();
    let guard = coord.lock("l").acquire().await.unwrap();

    master.kill();
    timeout(Duration::from_secs(5), guard.lost())
        .await
        .expect("the lock is reported lost");
    timeout(Duration::from_secs(1), membership.lost())
        .await
        .expect("the membership too");

    // The sentinel promotes the replica; the coordinator finds it by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(coord.is_live() && master_port(s).await == Some(b)) {
        assert!(Instant::now() < deadline, "no failover followed");
        sleep(Duration::from_millis(100)).await;
    }
    let guard = coord
        .lock("l")
        .acquire_timeout(Duration::from_secs(5))
        .await
        .expect("works on the new master");
    coord
        .join_group_create("g", Capabilities::none())
        .await
        .expect("rejoin on the new master");
    guard.release().await.unwrap();
    coord.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
