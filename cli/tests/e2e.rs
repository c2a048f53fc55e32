//! End-to-end: the built `tokenctl` binary against a running Worker (wrangler dev) with its
//! Redis behind it. `./scripts/test.sh` starts that stack and exports the TM_TEST_* variables;
//! without them these tests fail on purpose, naming the script.
//!
//! The database is shared with the other test binaries (run one after another), so nothing
//! here assumes it is empty; the accounts used are all prefixed `CLI_E2E_` and their Redis keys
//! are deleted at the end.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

const OK_ACCOUNT: &str = "CLI_E2E_OK";
/// The tests that sync or restore take turns: a restore writes every active token back, and a
/// sync deactivates what is missing, so one would see the other's keys come and go.
static WRITERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
const EXPIRED_ACCOUNT: &str = "CLI_E2E_EXPIRED";

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: the tokenctl end-to-end tests need the local stack; \
             run them with ./scripts/test.sh (it starts the Worker, Redis and Supabase and \
             exports TM_TEST_WORKER_URL, TM_TEST_ADMIN_KEY, TM_TEST_READ_KEY, TM_TEST_REDIS_URL)"
        ),
    }
}

struct Stack {
    url: String,
    admin: String,
    read: String,
}

fn stack() -> Stack {
    Stack {
        url: env("TM_TEST_WORKER_URL"),
        admin: env("TM_TEST_ADMIN_KEY"),
        read: env("TM_TEST_READ_KEY"),
    }
}

/// An empty working directory, so no stray `.env` takes part.
fn workdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tokenctl-e2e-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs tokenctl with `args`, configuration passed through `envs` only (the caller's
/// TOKEN_MANAGER_* and NO_COLOR are removed).
fn tokenctl_in(dir: &PathBuf, envs: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenctl"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("TOKEN_MANAGER_URL")
        .env_remove("TOKEN_MANAGER_API_KEY")
        .env_remove("NO_COLOR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("run tokenctl");
    let run = Run {
        code: out.status.code().expect("tokenctl exited by a signal"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        args: shown_args(args),
    };
    eprintln!("$ tokenctl {} -> exit {}", run.args, run.code);
    run
}

/// The arguments as logged: the value after `--api-key` is never shown.
fn shown_args(args: &[&str]) -> String {
    let mut shown = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for a in args {
        shown.push(if hide_next { "***" } else { a });
        hide_next = *a == "--api-key";
    }
    shown.join(" ")
}

/// Runs tokenctl with the URL as a flag and the key from a file only its owner may read.
fn tokenctl(s: &Stack, key: &str, args: &[&str]) -> Run {
    let dir = workdir("flags");
    // One file per call: tests run in parallel threads, and the admin and read keys have the
    // same length, so a name from the key alone would let one test overwrite another's key.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key_file = dir.join(format!("key-{}-{n}", key.len()));
    write_private(&key_file, &format!("{key}\n"));
    let key_file = key_file.display().to_string();
    let mut all = vec!["--url", s.url.as_str(), "--api-key-file", key_file.as_str()];
    all.extend_from_slice(args);
    let run = tokenctl_in(&dir, &[], &all);
    assert!(
        !run.stderr.contains("warning"),
        "a private key file draws no warning: {}",
        run.stderr
    );
    run
}

/// Writes `text` to `path` with mode 600.
fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    args: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "tokenctl {} failed\nstdout:\n{}\nstderr:\n{}",
            self.args, self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "tokenctl {}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }

    fn fails_with(self, code: i32, needles: &[&str]) -> Self {
        assert_eq!(
            self.code, code,
            "tokenctl {}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.args, self.stdout, self.stderr
        );
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "tokenctl {}: stderr lacks {n:?}:\n{}",
                self.args,
                self.stderr
            );
        }
        self
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn jwt(exp: i64, nonce: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD
        .encode(serde_json::json!({"sub": "cli-e2e", "exp": exp, "jti": nonce}).to_string());
    let sig = URL_SAFE_NO_PAD.encode(format!("not-a-real-signature-{nonce}"));
    format!("{header}.{payload}.{sig}")
}

/// The e2e accounts' Redis keys; deleted when dropped, even if an assertion failed.
struct RedisKeys {
    con: redis::Connection,
    keys: Vec<String>,
}

impl RedisKeys {
    /// A connection to the test Redis, with no keys to delete yet.
    fn connect() -> Self {
        let con = redis::Client::open(env("TM_TEST_REDIS_URL"))
            .expect("TM_TEST_REDIS_URL is a redis:// URL")
            .get_connection()
            .expect("connect to the test Redis");
        RedisKeys {
            con,
            keys: Vec::new(),
        }
    }

    fn set(&mut self, key: &str, value: &str) {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query::<()>(&mut self.con)
            .expect("SET in Redis");
        self.keys.push(key.to_string());
    }

    fn delete_all(&mut self) {
        if !self.keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&self.keys).query(&mut self.con);
            self.keys.clear();
        }
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        self.delete_all();
    }
}

/// Runs sync, waiting out a concurrent run (409) a few times.
fn sync(s: &Stack, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.push("sync");
    for _ in 0..10 {
        let run = tokenctl(s, &s.admin, &all);
        if run.code == 1 && run.stderr.contains("409") {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        return run.ok();
    }
    panic!("sync stayed busy (409) for 10 tries");
}

#[test]
fn sync_status_get_list_cleanup_against_the_worker() {
    let _turn = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let s = stack();
    let now = unix_now();
    let nonce = format!("{}-{now}", std::process::id());
    let ok_token = jwt(now + 3600, &nonce);
    let expired_token = jwt(now - 3600, &nonce);

    let mut keys = RedisKeys::connect();
    keys.set(&format!("token:{OK_ACCOUNT}"), &ok_token);
    keys.set(&format!("token:{EXPIRED_ACCOUNT}"), &expired_token);

    // sync --json: the exact body, which names our accounts.
    let run = sync(&s, &["--json"]);
    let body = run.json();
    assert_eq!(body["success"], true, "{body}");
    let accounts: Vec<&str> = body["accounts"]
        .as_array()
        .expect("accounts is a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        accounts.contains(&OK_ACCOUNT) && accounts.contains(&EXPIRED_ACCOUNT),
        "{body}"
    );
    assert!(body["tokens_synced"].as_i64().unwrap() >= 2, "{body}");
    assert!(
        !run.stdout.contains(&ok_token),
        "sync must not print tokens"
    );
    assert!(!run.stdout.contains(&s.admin) && !run.stderr.contains(&s.admin));

    // sync, human: the seed's layout; our tokens did not change, so nothing to print them.
    let run = sync(&s, &[]);
    let out = &run.stdout;
    assert!(
        out.starts_with(
            "🔄 SUPABASE TOKEN MANAGER\n\
             ============================================================\n\
             🔄 Syncing tokens from Redis to Supabase...\n\
             ✅ Sync successful: "
        ),
        "{out}"
    );
    for needle in [
        "📊 Tokens synced: ",
        "🔑 Key mappings: ",
        "🏦 Accounts synced:\n",
        "Unchanged: ",
    ] {
        assert!(out.contains(needle), "sync output lacks {needle:?}:\n{out}");
    }
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(!out.contains(&ok_token) && !out.contains(&s.admin));

    // A read key may not sync.
    tokenctl(&s, &s.read, &["sync"]).fails_with(1, &["403", "forbidden"]);

    // status with the read key, from a .env file in the working directory.
    let dir = workdir("dotenv");
    std::fs::write(
        dir.join(".env"),
        format!(
            "TOKEN_MANAGER_URL={}\nTOKEN_MANAGER_API_KEY={}\n",
            s.url, s.read
        ),
    )
    .unwrap();
    let run = tokenctl_in(&dir, &[], &["status"]).ok();
    for needle in [
        "📊 TOKEN STATUS:\n",
        "   Supabase tokens: ",
        "   Redis tokens: ",
        "   Sync needed: ",
        "   Last updated: ",
        "   Last sync: ",
        "🕐 Recent tokens:\n",
    ] {
        assert!(
            run.stdout.contains(needle),
            "status lacks {needle:?}:\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains(&s.read) && !run.stderr.contains(&s.read));
    // The file is readable by others (mode 644 from the umask): tokenctl says so.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join(".env"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = tokenctl_in(&dir, &[], &["status"]).ok();
    assert!(
        run.stderr
            .contains("./.env holds the API key and other users can read it (mode 644)"),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(&dir).ok();

    // status --json, configuration from the environment.
    let run = tokenctl_in(
        &workdir("env"),
        &[
            ("TOKEN_MANAGER_URL", &s.url),
            ("TOKEN_MANAGER_API_KEY", &s.read),
        ],
        &["--json", "status"],
    )
    .ok();
    let body = run.json();
    assert!(body["supabase_tokens"].as_i64().unwrap() >= 2, "{body}");
    assert!(body["redis_tokens"].as_i64().unwrap() >= 2, "{body}");
    assert!(body["recent_tokens"].is_array(), "{body}");

    // get: human, --json, --raw.
    let run = tokenctl(&s, &s.read, &["get", OK_ACCOUNT]).ok();
    assert!(
        run.stdout
            .contains(&format!("🔑 Token for {OK_ACCOUNT}:\n")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("   Expires at: "), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("   Token: {ok_token}\n")),
        "{}",
        run.stdout
    );

    let run = tokenctl(&s, &s.read, &["--json", "get", OK_ACCOUNT]).ok();
    let body = run.json();
    assert_eq!(body["account"], OK_ACCOUNT);
    assert_eq!(body["token"], ok_token.as_str());
    assert_eq!(body["expired"], false);
    let left = body["expires_in_seconds"]
        .as_i64()
        .expect("expires_in_seconds");
    assert!((3000..=3600).contains(&left), "{body}");

    let run = tokenctl(&s, &s.read, &["get", OK_ACCOUNT, "--raw"]).ok();
    assert_eq!(run.stdout, format!("{ok_token}\n"));
    assert_eq!(run.stderr, "");

    // An expired token is refused: 410, nothing on stdout.
    let run = tokenctl(&s, &s.read, &["get", EXPIRED_ACCOUNT, "--raw"])
        .fails_with(1, &["410", "token_expired"]);
    assert_eq!(run.stdout, "");
    assert!(!run.stderr.contains(&expired_token));

    // list: metadata only.
    let run = tokenctl(
        &s,
        &s.read,
        &["--json", "list", "--main-account", OK_ACCOUNT],
    )
    .ok();
    let body = run.json();
    let names: Vec<&str> = body["tokens"]
        .as_array()
        .expect("tokens is a list")
        .iter()
        .filter_map(|t| t["account_name"].as_str())
        .collect();
    assert_eq!(names, vec![OK_ACCOUNT], "{body}");
    assert_eq!(body["count"], 1, "{body}");
    assert!(!run.stdout.contains(&ok_token));

    let run = tokenctl(
        &s,
        &s.read,
        &["list", "--active", "true", "--expiring-within", "2h"],
    )
    .ok();
    assert!(run.stdout.contains("📋 Tokens: "), "{}", run.stdout);
    assert!(run.stdout.contains(OK_ACCOUNT), "{}", run.stdout);
    assert!(!run.stdout.contains(&ok_token));

    // cleanup (admin): human, then --json.
    let run = tokenctl(&s, &s.admin, &["cleanup"]).ok();
    assert!(
        run.stdout.contains("✅ Cleanup successful: "),
        "{}",
        run.stdout
    );
    let cleaned: i64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("🧹 Tokens cleaned: "))
        .expect("a 'Tokens cleaned' line")
        .trim()
        .parse()
        .unwrap();
    assert!(cleaned >= 1, "our expired token was active: {}", run.stdout);

    let run = tokenctl(&s, &s.admin, &["--json", "cleanup"]).ok();
    let body = run.json();
    assert_eq!(body["success"], true, "{body}");
    assert!(body["cleaned"].is_number(), "{body}");

    // After cleanup the expired token is inactive, and still refused.
    let run = tokenctl(
        &s,
        &s.read,
        &[
            "--json",
            "list",
            "--main-account",
            EXPIRED_ACCOUNT,
            "--active",
            "false",
        ],
    )
    .ok();
    assert!(run.stdout.contains(EXPIRED_ACCOUNT), "{}", run.stdout);
    tokenctl(&s, &s.read, &["get", EXPIRED_ACCOUNT]).fails_with(1, &["410"]);

    // Remove our keys; the next sync deactivates our accounts.
    keys.delete_all();
    let body = sync(&s, &["--json"]).json();
    assert_eq!(body["success"], true, "{body}");
    tokenctl(&s, &s.read, &["get", OK_ACCOUNT]).fails_with(1, &["410"]);
}

#[test]
fn wrong_key_is_exit_1_with_401() {
    let s = stack();
    let wrong = "definitely-not-a-valid-key";
    let run = tokenctl(&s, wrong, &["status"]).fails_with(1, &["401", "unauthorized"]);
    assert_eq!(run.stdout.lines().next(), Some("🔄 SUPABASE TOKEN MANAGER"));
    assert!(!run.stdout.contains(wrong) && !run.stderr.contains(wrong));
    // --json puts the API's error body on stdout as received.
    let run = tokenctl(&s, wrong, &["--json", "status"]).fails_with(1, &["401"]);
    assert_eq!(run.json()["error"]["code"], "unauthorized");
}

#[test]
fn unknown_account_is_exit_1_with_404() {
    let s = stack();
    let account = format!("CLI_E2E_NO_SUCH_ACCOUNT_{}", std::process::id());
    let run = tokenctl(&s, &s.read, &["get", &account, "--raw"]).fails_with(1, &["404"]);
    assert_eq!(run.stdout, "");
    // A name with a slash stays one path segment: refused as an account (400 or 404), never
    // routed to another endpoint.
    let run = tokenctl(&s, &s.read, &["get", "CLI_E2E/../status"]).fails_with(1, &[]);
    assert!(
        run.stderr.contains("API error 404") || run.stderr.contains("API error 400"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("TOKEN STATUS"));
}

#[test]
fn unreachable_url_is_exit_3() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let dir = workdir("closed");
    for args in [
        &["status"][..],
        &["sync"][..],
        &["get", OK_ACCOUNT, "--raw"][..],
    ] {
        let mut all = vec!["--url", url.as_str(), "--api-key", "k", "--timeout", "5s"];
        all.extend_from_slice(args);
        let run = tokenctl_in(&dir, &[], &all).fails_with(3, &["could not connect"]);
        assert!(!run.stdout.contains("Token:"));
    }
    // A missing setting is a configuration error, exit 2, naming it.
    tokenctl_in(&dir, &[], &["status"]).fails_with(2, &["TOKEN_MANAGER_URL"]);
}

#[test]
fn the_key_comes_from_standard_input_or_the_command_line_with_a_warning() {
    use std::io::Write as _;
    let s = stack();
    let dir = workdir("stdin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenctl"))
        .args(["--url", &s.url, "--api-key-file", "-", "--json", "status"])
        .current_dir(&dir)
        .env_remove("TOKEN_MANAGER_URL")
        .env_remove("TOKEN_MANAGER_API_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tokenctl");
    writeln!(child.stdin.take().unwrap(), "{}", s.read).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["success"], true);
    assert!(stderr.is_empty(), "{stderr}");

    let run = tokenctl_in(
        &dir,
        &[],
        &["--url", &s.url, "--api-key", &s.read, "--json", "status"],
    )
    .ok();
    assert!(
        run.stderr
            .contains("warning: --api-key puts the key in the process list"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(&s.read));
}

#[test]
fn a_dotenv_cannot_redirect_a_key_from_the_environment() {
    // ./.env names a URL (a listener of ours) but no key; the key is in the environment.
    let s = stack();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let trap = format!("http://{}", listener.local_addr().unwrap());
    let dir = workdir("redirect");
    write_private(&dir.join(".env"), &format!("TOKEN_MANAGER_URL={trap}\n"));
    let run = tokenctl_in(&dir, &[("TOKEN_MANAGER_API_KEY", &s.read)], &["status"])
        .fails_with(2, &["comes only from ./.env", "the environment"]);
    assert!(!run.stderr.contains(&s.read));
    assert!(
        listener.accept().is_err(),
        "tokenctl connected to the URL from ./.env"
    );
    // With the URL in the environment too, the environment's pair is used.
    tokenctl_in(
        &dir,
        &[
            ("TOKEN_MANAGER_URL", &s.url),
            ("TOKEN_MANAGER_API_KEY", &s.read),
        ],
        &["--json", "status"],
    )
    .ok();
    // http:// to a host that is not this machine is refused before connecting.
    tokenctl_in(
        &dir,
        &[("TOKEN_MANAGER_API_KEY", &s.read)],
        &["--url", "http://token-manager.invalid", "status"],
    )
    .fails_with(2, &["--insecure"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn health_needs_no_key() {
    let s = stack();
    let dir = workdir("health");
    let run = tokenctl_in(&dir, &[], &["--url", &s.url, "health"]).ok();
    assert!(
        run.stdout.contains("✅ Worker healthy: ok"),
        "{}",
        run.stdout
    );
    let run = tokenctl_in(&dir, &[], &["--url", &s.url, "--json", "health"]).ok();
    assert_eq!(run.json()["status"], "ok");
}

#[test]
fn restore_dry_run_then_restore_puts_deleted_keys_back_byte_for_byte() {
    let _turn = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let s = stack();
    let now = unix_now();
    let nonce = format!("restore-{}-{now}", std::process::id());
    let raw = jwt(now + 3600, &nonce);
    let json_value = format!(
        "{{ \"accessToken\": \"{}\", \"expirationTime\": {}, \"userId\": 42 }}",
        jwt(now + 1800, &format!("{nonce}-json")),
        (now + 1800) * 1000
    );
    let ours = [
        ("token:CLI_E2E_RESTORE_RAW".to_string(), raw),
        ("token:CLI_E2E_RESTORE_JSON".to_string(), json_value),
    ];
    let mut keys = RedisKeys::connect();
    for (key, value) in &ours {
        keys.set(key, value);
    }
    sync(&s, &["--json"]);
    // Redis forgets our keys (nothing syncs in between, so the tokens stay active).
    let _: i64 = redis::cmd("DEL")
        .arg(ours.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
        .query(&mut keys.con)
        .unwrap();

    tokenctl(&s, &s.read, &["restore"]).fails_with(1, &["403"]);
    let restored_keys = |body: &Value| -> Vec<String> {
        body["restored"]
            .as_array()
            .expect("restored is a list")
            .iter()
            .filter_map(|k| k["redis_key"].as_str().map(str::to_string))
            .collect()
    };

    let dry = tokenctl(&s, &s.admin, &["--json", "restore", "--dry-run"])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true, "{dry}");
    let would = restored_keys(&dry);
    for (key, _) in &ours {
        assert!(would.contains(key), "{key} not in {dry}");
        let got: Option<String> = redis::cmd("GET").arg(key).query(&mut keys.con).unwrap();
        assert_eq!(got, None, "the dry run wrote {key}");
    }

    let human = tokenctl(&s, &s.admin, &["restore"]).ok();
    assert!(
        human.stdout.contains("✅ Restore successful"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("♻️ Restored:"), "{}", human.stdout);
    for (key, value) in &ours {
        let got: Option<String> = redis::cmd("GET").arg(key).query(&mut keys.con).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(value.as_str()),
            "{key} not restored byte for byte"
        );
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut keys.con).unwrap();
        assert!(ttl > 0 && ttl <= 3_600_000, "{key}: PTTL {ttl}");
        assert!(!human.stdout.contains(value.as_str()) && !human.stderr.contains(value.as_str()));
    }
    // Whatever else the restore wrote back (other suites' active rows) is removed with ours.
    let again = tokenctl(&s, &s.admin, &["--json", "restore"]).ok().json();
    let present: Vec<&str> = again["already_present"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["redis_key"].as_str())
        .collect();
    for (key, _) in &ours {
        assert!(
            present.contains(&key.as_str()),
            "{key} not already present: {again}"
        );
    }
    keys.keys.extend(would);
    keys.keys.extend(present.iter().map(|k| k.to_string()));
}

#[test]
fn accounts_shows_states_coloured_only_when_asked_and_audit_shows_who_read() {
    let _turn = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let s = stack();
    let now = unix_now();
    let nonce = format!("health-{}-{now}", std::process::id());
    let fresh = jwt(now + 3600, &nonce);
    let old = jwt(now - 3600, &nonce);
    let mut keys = RedisKeys::connect();
    keys.set("token:CLI_E2E_HEALTH_OK", &fresh);
    keys.set("token:CLI_E2E_HEALTH_OLD", &old);
    sync(&s, &["--json"]);
    tokenctl(&s, &s.read, &["get", "CLI_E2E_HEALTH_OK", "--raw"]).ok();

    let body = tokenctl(&s, &s.read, &["--json", "accounts"]).ok().json();
    let state_of = |account: &str| -> String {
        body["main"]
            .as_array()
            .expect("main is a list")
            .iter()
            .flat_map(|m| m["accounts"].as_array().unwrap())
            .find(|a| a["account"] == account)
            .unwrap_or_else(|| panic!("{account} not in {body}"))["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state_of("CLI_E2E_HEALTH_OK"), "fresh");
    assert_eq!(state_of("CLI_E2E_HEALTH_OLD"), "expired");

    // Not a terminal: no colour. Forced: the state cells are coloured (green, red).
    let human = tokenctl(&s, &s.read, &["accounts"]).ok();
    assert!(human.stdout.contains("🩺 Accounts:"), "{}", human.stdout);
    let row = |out: &str, account: &str| -> String {
        out.lines()
            .find(|l| l.contains(account))
            .unwrap_or_else(|| panic!("no row for {account}: {out}"))
            .to_string()
    };
    assert!(row(&human.stdout, "CLI_E2E_HEALTH_OK").contains("fresh"));
    assert!(!human.stdout.contains('\x1b'), "colour without a terminal");
    let dir = workdir("color");
    let key_file = dir.join("read-key");
    write_private(&key_file, &format!("{}\n", s.read));
    let key_file = key_file.display().to_string();
    let args = [
        "--url",
        s.url.as_str(),
        "--api-key-file",
        key_file.as_str(),
        "accounts",
    ];
    let forced = tokenctl_in(&dir, &[("CLICOLOR_FORCE", "1")], &args).ok();
    assert!(
        row(&forced.stdout, "CLI_E2E_HEALTH_OK").contains("\x1b[32mfresh"),
        "{}",
        forced.stdout
    );
    assert!(
        row(&forced.stdout, "CLI_E2E_HEALTH_OLD").contains("\x1b[31mexpired"),
        "{}",
        forced.stdout
    );
    let no_color = tokenctl_in(&dir, &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &args).ok();
    assert!(
        !no_color.stdout.contains('\x1b'),
        "NO_COLOR: {}",
        no_color.stdout
    );
    for run in [&human, &forced] {
        assert!(
            !run.stdout.contains(&fresh) && !run.stdout.contains(&old),
            "a token shown"
        );
    }

    // The read is recorded after the answer (wait_until): poll the audit for it.
    tokenctl(&s, &s.read, &["audit"]).fails_with(1, &["403"]);
    let audit_args = [
        "--json",
        "audit",
        "--account",
        "CLI_E2E_HEALTH_OK",
        "--since",
        "10m",
    ];
    let mut reads = Value::Null;
    for _ in 0..50 {
        reads = tokenctl(&s, &s.admin, &audit_args).ok().json()["reads"].clone();
        if reads.as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(reads[0]["account_name"], "CLI_E2E_HEALTH_OK", "{reads}");
    assert_eq!(reads[0]["outcome"], 200, "{reads}");
    let human = tokenctl(
        &s,
        &s.admin,
        &["audit", "--account", "CLI_E2E_HEALTH_OK", "--limit", "5"],
    )
    .ok();
    assert!(human.stdout.contains("🔎 Token reads:"), "{}", human.stdout);
    assert!(
        row(&human.stdout, "CLI_E2E_HEALTH_OK").contains("200"),
        "{}",
        human.stdout
    );
    let later = tokenctl(
        &s,
        &s.admin,
        &[
            "--json",
            "audit",
            "--account",
            "CLI_E2E_HEALTH_OK",
            "--until",
            "1h",
        ],
    )
    .ok()
    .json();
    assert_eq!(later["count"], 0, "nothing read over an hour ago: {later}");
    assert!(!human.stdout.contains(&fresh) && !human.stdout.contains(&s.read));
}
