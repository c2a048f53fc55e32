//! upstash-local driven by Upstash's own clients: `@upstash/redis` (npm) and `upstash-redis`
//! (PyPI), at the versions the repo pins, installed by `./scripts/test.sh`. Each test starts
//! its own redis-server and server, runs the client script from `tests/clients/` against it
//! and fails with the script's output when any of its checks fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{TestServer, READ_ONLY_TOKEN, TOKEN};

/// How long one client script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("upstash-local sits in the repository")
        .to_path_buf()
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Fails with what to do when an installed tool is missing.
fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{} is missing: {what} is not installed; run ./scripts/test.sh, which installs it",
        path.display()
    );
}

/// Runs `program args` with the server's URL and tokens in the environment the clients read
/// (`UPSTASH_REDIS_REST_URL`, `UPSTASH_REDIS_REST_TOKEN`), and fails with its output unless it
/// exits 0.
async fn run_client(server: &TestServer, program: &Path, args: &[&Path]) {
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(repo_root())
        .env("UPSTASH_REDIS_REST_URL", &server.base)
        .env("UPSTASH_REDIS_REST_TOKEN", TOKEN)
        .env("UPSTASH_REDIS_REST_READ_ONLY_TOKEN", READ_ONLY_TOKEN)
        .env("UPSTASH_DISABLE_TELEMETRY", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", program.display()));
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("client script output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\n{stdout}\n{stderr}",
        program.display(),
        output.status
    );
    assert!(
        stdout.contains("all checks passed"),
        "no summary line:\n{stdout}\n{stderr}"
    );
    println!("{stdout}");
}

#[tokio::test]
async fn typescript_client_upstash_redis() {
    require(
        &repo_root().join("node_modules/@upstash/redis/package.json"),
        "@upstash/redis (npm)",
    );
    let server = TestServer::start().await;
    run_client(&server, Path::new("node"), &[&script("upstash-redis.mjs")]).await;
}

#[tokio::test]
async fn python_client_upstash_redis() {
    let python = repo_root().join(".state/tools/py/bin/python");
    require(&python, "the Python venv with upstash-redis (PyPI)");
    let server = TestServer::start().await;
    run_client(&server, &python, &[&script("upstash_redis_client.py")]).await;
}
