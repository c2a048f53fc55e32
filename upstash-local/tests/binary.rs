//! The built `upstash-local` binary: flags, environment, start-up line and stderr request log.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, TestRedis};

const TOKEN: &str = "binary-test-token";

#[test]
fn binary_serves_and_logs_to_stderr() {
    let redis = TestRedis::start();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_upstash-local"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis-url", &redis.url()])
        .env("UPSTASH_LOCAL_TOKEN", TOKEN)
        .env_remove("UPSTASH_LOCAL_READ_ONLY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn upstash-local");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a stderr line")
    };

    let started = next_line();
    assert!(
        started.starts_with(&format!("upstash-local listening addr=127.0.0.1:{port} ")),
        "{started}"
    );
    assert!(!started.contains(TOKEN));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let sent = client
                .post(format!("http://127.0.0.1:{port}/set/bin-key"))
                .bearer_auth(TOKEN)
                .body("bin-value")
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    break (status, response.text().await.unwrap());
                }
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => panic!("server not reachable: {err}"),
            }
        }
    });
    assert_eq!((status, body.as_str()), (200, r#"{"result":"OK"}"#));

    let logged = next_line();
    assert!(logged.starts_with("upstash-local request ts="), "{logged}");
    assert!(
        logged.contains(" method=POST path=/set status=200 commands=1 duration_ms="),
        "{logged}"
    );
    assert!(
        !logged.contains("bin-key") && !logged.contains("bin-value") && !logged.contains(TOKEN)
    );

    // SIGTERM (to this child's pid only) stops it gracefully, and an open event stream does
    // not hold that up: the stream ends, then the process exits 0.
    runtime.block_on(async {
        let mut stream = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/subscribe/bin-chan"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("subscribe");
        assert_eq!(stream.status(), 200);
        let first = stream.chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"data: subscribe,bin-chan,1\n\n");
        let signalled = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(signalled.success());
        let end = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("the stream ends on shutdown");
        assert!(matches!(end, Ok(None)), "{end:?}");
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill upstash-local");
            child.wait().unwrap();
            panic!("upstash-local did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn binary_requires_a_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_upstash-local"))
        .env_remove("UPSTASH_LOCAL_TOKEN")
        .output()
        .expect("run upstash-local");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--token"), "{stderr}");
}

#[test]
fn binary_reports_an_unreachable_redis() {
    let output = Command::new(env!("CARGO_BIN_EXE_upstash-local"))
        .args(["--token", TOKEN, "--listen", "127.0.0.1:0"])
        .args([
            "--redis-url",
            &format!("redis://u:pw@127.0.0.1:{}", free_port()),
        ])
        .output()
        .expect("run upstash-local");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to Redis at redis://***@127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("pw"), "{stderr}");
}
