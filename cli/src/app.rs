//! One tokenctl run: resolve configuration, call the API, read its answer through the
//! Worker's own types (`api_model`), print it, pick the exit code.

use std::io::Write;

use api_model::{
    AccountsReport, AuditReport, CleanupReport, HealthReport, ListReport, RenewReport,
    RestoreReport, StatusReport, SyncReport, TokenReport,
};
use serde::de::DeserializeOwned;

use crate::cli::{Cli, Command};
use crate::client::{
    validate_account, AuditFilter, Call, Client, ListFilter, Response, RestoreOptions,
};
use crate::config::{resolve, DotEnv, Overrides, Surroundings};
use crate::error::{CliError, EXIT_OK};
use crate::render;
use crate::spinner::Spinner;

/// What a run needs from its surroundings, so tests can supply their own.
pub struct Context<'a> {
    /// Looks up a process environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `./.env` (empty when there is none).
    pub dotenv: DotEnv,
    /// Reads all of standard input (`--api-key-file -`).
    pub stdin: &'a dyn Fn() -> std::io::Result<String>,
    /// Whether stdout is a terminal (trailing newline after `--json`).
    pub stdout_is_terminal: bool,
    /// Whether stderr is a terminal (spinner).
    pub stderr_is_terminal: bool,
    /// Whether stdout shows colour (anstream's choice: a terminal, no `--no-color`/`NO_COLOR`).
    pub stdout_color: bool,
    /// Whether stderr shows colour.
    pub stderr_color: bool,
}

/// The API call a command makes.
pub fn call_for(command: &Command) -> Result<Call, CliError> {
    Ok(match command {
        Command::Sync => Call::Sync,
        Command::Status => Call::Status,
        Command::Get { account, .. } => {
            validate_account(account)?;
            Call::Get(account.clone())
        }
        Command::List {
            main_account,
            active,
            expiring_within,
        } => Call::List(ListFilter {
            main_account: main_account.clone().filter(|m| !m.trim().is_empty()),
            active: *active,
            expiring_within_secs: *expiring_within,
        }),
        Command::Cleanup => Call::Cleanup,
        Command::Restore {
            dry_run,
            include_unknown_expiry,
        } => Call::Restore(RestoreOptions {
            dry_run: *dry_run,
            include_unknown_expiry: *include_unknown_expiry,
        }),
        Command::Renew { dry_run } => Call::Renew { dry_run: *dry_run },
        Command::Accounts => Call::Accounts,
        Command::Audit {
            account,
            key,
            since,
            until,
            limit,
        } => {
            if let Some(account) = account {
                validate_account(account)?;
            }
            Call::Audit(AuditFilter {
                account: account.clone(),
                key: key.clone(),
                since: *since,
                until: *until,
                limit: *limit,
            })
        }
        Command::Health => Call::Health,
    })
}

/// Writes `text` to a stream, without its colour codes unless the stream shows colour.
fn styled(text: &str, color: bool) -> String {
    if color {
        text.to_string()
    } else {
        render::plain(text)
    }
}

/// Runs a parsed command line, writing the answer to `out`, and returns the exit code.
/// Warnings and errors go to `err`; a closed stdout pipe (`| head`) ends quietly with 0.
pub fn run(cli: &Cli, ctx: &Context<'_>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match execute(cli, ctx, out, err) {
        Ok(()) => EXIT_OK,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            let _ = out.flush();
            let _ = err.write_all(styled(&render::error(&e), ctx.stderr_color).as_bytes());
            let _ = err.flush();
            e.exit_code()
        }
    }
}

fn write(out: &mut dyn Write, bytes: &[u8]) -> Result<(), CliError> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// A 2xx answer read as the Worker's report. The message names what is wrong (a missing
/// field, a wrong type, not JSON) but never repeats a value: a token answer carries a token.
fn read<T: DeserializeOwned>(resp: &Response, what: &str) -> Result<T, CliError> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        let text = String::from_utf8_lossy(&resp.body);
        let looks_like_json = text.trim_start().starts_with(['{', '[']);
        let why = match e.classify() {
            serde_json::error::Category::Data => {
                let msg = e.to_string();
                match msg.find("missing field") {
                    Some(i) => msg[i..].split(" at line").next().unwrap_or("").to_string(),
                    None => format!(
                        "a field has another type (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                }
            }
            _ if looks_like_json => format!(
                "it is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            _ => format!("it is not JSON ({} bytes)", resp.body.len()),
        };
        CliError::Unexpected(format!(
            "HTTP {} but the body is not {what}: {why}; is --url the token-manager Worker, \
             and is tokenctl as new as it?",
            resp.status
        ))
    })
}

/// A 2xx answer, read.
enum Answer {
    /// Boxed, like status: the largest answers.
    Sync(Box<SyncReport>),
    /// Boxed: the status report is by far the largest answer.
    Status(Box<StatusReport>),
    Token(TokenReport),
    List(ListReport),
    Cleanup(CleanupReport),
    Restore(RestoreReport),
    Renew(RenewReport),
    Accounts(AccountsReport),
    Audit(AuditReport),
    Health(HealthReport),
}

impl Answer {
    fn read(call: &Call, resp: &Response) -> Result<Self, CliError> {
        Ok(match call {
            Call::Sync => Answer::Sync(Box::new(read(resp, "a sync report")?)),
            Call::Status => Answer::Status(Box::new(read(resp, "a status report")?)),
            Call::Get(_) => Answer::Token(read(resp, "a token answer")?),
            Call::List(_) => Answer::List(read(resp, "a token listing")?),
            Call::Cleanup => Answer::Cleanup(read(resp, "a cleanup report")?),
            Call::Restore(_) => Answer::Restore(read(resp, "a restore report")?),
            Call::Renew { .. } => Answer::Renew(read(resp, "a renew report")?),
            Call::Accounts => Answer::Accounts(read(resp, "an account health report")?),
            Call::Audit(_) => Answer::Audit(read(resp, "an audit listing")?),
            Call::Health => Answer::Health(read(resp, "a health answer")?),
        })
    }

    fn render(&self) -> String {
        match self {
            Answer::Sync(r) => render::sync(r),
            Answer::Status(s) => render::status(s),
            Answer::Token(t) => render::token(t),
            Answer::List(l) => render::list(l),
            Answer::Cleanup(c) => render::cleanup(c),
            Answer::Restore(r) => render::restore(r),
            Answer::Renew(r) => render::renew(r),
            Answer::Accounts(a) => render::accounts(a),
            Answer::Audit(a) => render::audit(a),
            Answer::Health(h) => render::health(h),
        }
    }

    /// A 2xx answer that reports failure (`success: false`, unhealthy).
    fn failure(&self) -> Option<CliError> {
        match self {
            Answer::Sync(r) if !r.success => {
                Some(CliError::Failed(format!("sync failed: {}", r.message)))
            }
            Answer::Cleanup(c) if !c.success => {
                Some(CliError::Failed(format!("cleanup failed: {}", c.message)))
            }
            Answer::Restore(r) if !r.success => {
                Some(CliError::Failed(format!("restore failed: {}", r.message)))
            }
            Answer::Renew(r) if !r.success => {
                Some(CliError::Failed(format!("renew failed: {}", r.message)))
            }
            Answer::Health(h) if h.status != "ok" => Some(CliError::Failed(format!(
                "the Worker reports status {:?}",
                h.status
            ))),
            _ => None,
        }
    }
}

fn execute(
    cli: &Cli,
    ctx: &Context<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let call = call_for(&cli.command)?;
    let overrides = Overrides {
        url: cli.url.clone(),
        api_key: cli.api_key.clone(),
        api_key_file: cli.api_key_file.clone(),
        insecure: cli.insecure,
    };
    let around = Surroundings {
        env: ctx.env,
        dotenv: &ctx.dotenv,
        stdin: ctx.stdin,
    };
    let settings = resolve(&overrides, &around, call.needs_key().then(|| call.name()))?;
    for w in &settings.warnings {
        let _ = err.write_all(styled(&render::warning(w), ctx.stderr_color).as_bytes());
    }
    let client = Client::new(&settings, cli.timeout)?;

    let raw = matches!(cli.command, Command::Get { raw: true, .. });
    let human = !raw && !cli.json;
    let show = |text: &str| styled(text, ctx.stdout_color);

    if human {
        let mut pre = render::header();
        if call == Call::Sync {
            pre.push_str(&render::sync_preamble());
        }
        write(out, show(&pre).as_bytes())?;
    }

    let spinner = Spinner::start(call.spinner_label(), ctx.stderr_is_terminal);
    let result = client.execute(&call);
    spinner.stop();

    let resp = match result {
        Ok(resp) => resp,
        Err(CliError::Api(e)) => {
            if cli.json && !raw && !e.body.is_empty() {
                write(out, &e.body)?;
                if ctx.stdout_is_terminal && !e.body.ends_with(b"\n") {
                    write(out, b"\n")?;
                }
            }
            return Err(CliError::Api(e));
        }
        Err(e) => return Err(e),
    };

    if raw {
        let token: TokenReport = read(&resp, "a token answer")?;
        if token.token.is_empty() {
            return Err(CliError::Unexpected("the answer has an empty token".into()));
        }
        return write(out, format!("{}\n", token.token).as_bytes());
    }

    if cli.json {
        write(out, &resp.body)?;
        if ctx.stdout_is_terminal && !resp.body.ends_with(b"\n") {
            write(out, b"\n")?;
        }
        // A script still learns about a reported failure from the exit code.
        return Answer::read(&call, &resp)
            .ok()
            .and_then(|a| a.failure())
            .map_or(Ok(()), Err);
    }

    let answer = Answer::read(&call, &resp)?;
    write(out, show(&answer.render()).as_bytes())?;
    answer.failure().map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    //! Whole runs against a canned HTTP server on 127.0.0.1, checking bytes out and exit codes.
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// Serves each connection with the next canned `(status, body)` and records the request
    /// heads it saw.
    struct Canned {
        url: String,
        seen: Arc<Mutex<Vec<String>>>,
    }

    fn serve(answers: Vec<(u16, &'static str)>) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut buf = vec![0; len];
                reader.read_exact(&mut buf).ok();
                seen2.lock().unwrap().push(head);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut s = stream;
                std::io::Write::write_all(&mut s, resp.as_bytes()).ok();
            }
        });
        Canned { url, seen }
    }

    fn no_stdin() -> std::io::Result<String> {
        Err(std::io::Error::other("no standard input in this test"))
    }

    fn run_args(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let cli =
            Cli::try_parse_from(std::iter::once("tokenctl").chain(args.iter().copied())).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        let ctx = Context {
            env: &lookup,
            dotenv: DotEnv::default(),
            stdin: &no_stdin,
            stdout_is_terminal: false,
            stderr_is_terminal: false,
            stdout_color: false,
            stderr_color: false,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&cli, &ctx, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    const KEY: &str = "secret-admin-key-123";
    const KEY_WARNING: &str = "⚠️ warning: --api-key puts the key in the process list";

    const SYNC_BODY: &str = r#"{"success":true,"message":"Synced 1 tokens from Redis to Supabase","tokens_synced":1,"inserted":1,"updated":0,"unchanged":0,"deactivated":0,"skipped":[],"key_mappings":1,"accounts":["APEX_136189"],"run_id":"r1","duration_ms":12}"#;

    #[test]
    fn sync_human_sends_post_with_bearer_key() {
        let s = serve(vec![(200, SYNC_BODY)]);
        let (code, out, err) = run_args(&["--url", &s.url, "--api-key", KEY, "sync"], &[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "🔄 SUPABASE TOKEN MANAGER\n\
             ============================================================\n\
             🔄 Syncing tokens from Redis to Supabase...\n\
             ✅ Sync successful: Synced 1 tokens from Redis to Supabase\n\
             📊 Tokens synced: 1\n   Inserted: 1 | Updated: 0 | Unchanged: 0 | Deactivated: 0\n\
             🔑 Key mappings: 1\n🏦 Accounts synced:\n   • APEX_136189\n🆔 Run: r1 (12 ms)\n"
        );
        // --api-key works, with a warning on stderr.
        assert!(err.starts_with(KEY_WARNING), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        let head = s.seen.lock().unwrap()[0].clone();
        assert!(head.starts_with("POST /v1/sync HTTP/1.1\r\n"), "{head}");
        assert!(head
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {KEY}")));
        assert!(!out.contains(KEY) && !err.contains(KEY));
    }

    #[test]
    fn json_prints_the_exact_bytes() {
        let body = "{ \"supabase_tokens\" :3,\"unknown\":[1,2]}";
        let s = serve(vec![(200, body)]);
        let (code, out, _) = run_args(
            &["--json", "status"],
            &[
                ("TOKEN_MANAGER_URL", &s.url),
                ("TOKEN_MANAGER_API_KEY", KEY),
            ],
        );
        assert_eq!((code, out.as_str()), (0, body));
        assert!(s.seen.lock().unwrap()[0].starts_with("GET /v1/status "));
    }

    #[test]
    fn get_raw_prints_only_the_token() {
        let body = r#"{"success":true,"account":"APEX_136189","main_account":"APEX_136189","token":"eyJ.abc.def","token_type":"bearer","md_access_token":null,"expires_at":null,"expired":false,"expires_in_seconds":null,"updated_at":"2025-10-17T13:45:00Z","metadata":{}}"#;
        let s = serve(vec![(200, body)]);
        let (code, out, err) = run_args(
            &[
                "--url",
                &s.url,
                "--api-key",
                KEY,
                "--json",
                "get",
                "APEX_136189",
                "--raw",
            ],
            &[],
        );
        assert_eq!((code, out.as_str()), (0, "eyJ.abc.def\n"));
        assert!(err.starts_with(KEY_WARNING), "{err}");
        assert!(s.seen.lock().unwrap()[0].starts_with("GET /v1/tokens/APEX_136189 "));
    }

    #[test]
    fn api_errors_exit_1_with_code_and_message_on_stderr() {
        let gone = r#"{"error":{"code":"token_expired","message":"Token for CLI_X expired"}}"#;
        let s = serve(vec![(410, gone), (410, gone)]);
        let (code, out, err) = run_args(
            &["--url", &s.url, "get", "CLI_X", "--raw"],
            &[("TOKEN_MANAGER_API_KEY", KEY)],
        );
        assert_eq!(code, 1);
        assert_eq!(out, "");
        assert_eq!(
            err,
            "❌ API error 410 (token_expired): Token for CLI_X expired\n"
        );
        // With --json, the error body also goes to stdout, unchanged.
        let (code, out, err) = run_args(
            &["--url", &s.url, "--api-key", KEY, "--json", "get", "CLI_X"],
            &[],
        );
        assert_eq!((code, out.as_str()), (1, gone));
        assert!(err.contains("410"));
    }

    #[test]
    fn unauthorized_is_exit_1_and_never_echoes_the_key() {
        let s = serve(vec![(
            401,
            r#"{"error":{"code":"unauthorized","message":"Missing or unknown API key"}}"#,
        )]);
        let (code, out, err) = run_args(&["--url", &s.url, "--api-key", KEY, "status"], &[]);
        assert_eq!(code, 1);
        assert!(
            err.lines()
                .nth(1)
                .unwrap_or_default()
                .starts_with("❌ API error 401 (unauthorized): Missing or unknown API key"),
            "{err}"
        );
        assert!(!out.contains(KEY) && !err.contains(KEY));
    }

    #[test]
    fn success_false_is_exit_1() {
        let s = serve(vec![(
            200,
            r#"{"success":false,"message":"lock busy","cleaned":0,"run_id":"r","pruned_runs":0}"#,
        )]);
        let (code, out, err) = run_args(
            &["--url", &s.url, "cleanup"],
            &[("TOKEN_MANAGER_API_KEY", KEY)],
        );
        assert_eq!(code, 1);
        assert!(out.contains("❌ Cleanup failed: lock busy"));
        assert_eq!(err, "❌ cleanup failed: lock busy\n");
    }

    #[test]
    fn list_sends_filters_and_health_sends_no_key() {
        let s = serve(vec![
            (
                200,
                r#"{"success":true,"tokens":[],"count":0,"limit":100,"offset":0}"#,
            ),
            (
                200,
                r#"{"status":"ok","service":"token-manager","version":"0.1.0"}"#,
            ),
        ]);
        let (code, _, err) = run_args(
            &[
                "--url",
                &s.url,
                "--api-key",
                KEY,
                "list",
                "--main-account",
                "APEX_136189",
                "--active",
                "true",
                "--expiring-within",
                "10m",
            ],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        let (code, out, _) = run_args(&["--url", &s.url, "--api-key", KEY, "health"], &[]);
        assert_eq!(code, 0);
        assert!(out.contains("✅ Worker healthy: ok\n"), "{out}");
        let seen = s.seen.lock().unwrap();
        assert!(
            seen[0].starts_with(
                "GET /v1/tokens?main_account=APEX_136189&active=true&expiring_within=600 "
            ),
            "{}",
            seen[0]
        );
        assert!(seen[1].starts_with("GET /health "));
        assert!(!seen[1].to_ascii_lowercase().contains("authorization"));
    }

    #[test]
    fn an_answer_that_is_not_the_workers_is_exit_1_without_its_values() {
        let env = [("TOKEN_MANAGER_API_KEY", KEY)];
        let s = serve(vec![
            (200, "<html>hello</html>"),
            (200, r#"{"supabase_tokens":3}"#),
            (200, r#"{"success":true,"account":"A","token":12345678}"#),
        ]);
        let (code, _, err) = run_args(&["--url", &s.url, "status"], &env);
        assert_eq!(code, 1);
        assert!(err.contains("not a status report: it is not JSON"), "{err}");
        let (code, _, err) = run_args(&["--url", &s.url, "status"], &env);
        assert_eq!(code, 1);
        assert!(err.contains("missing field `success`"), "{err}");
        // A value of the wrong type is not echoed (it could be a token).
        let (code, _, err) = run_args(&["--url", &s.url, "get", "A"], &env);
        assert_eq!(code, 1);
        assert!(err.contains("a field has another type"), "{err}");
        assert!(!err.contains("12345678"), "{err}");
    }

    #[test]
    fn plain_http_to_another_host_is_refused_before_any_request() {
        let (code, out, err) = run_args(
            &["--url", "http://worker.example.com", "status"],
            &[("TOKEN_MANAGER_API_KEY", KEY)],
        );
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(err.contains("--insecure"), "{err}");
        assert!(!err.contains(KEY));
    }

    #[test]
    fn configuration_problems_exit_2() {
        let (code, out, err) = run_args(&["status"], &[]);
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(err.contains("TOKEN_MANAGER_URL is not set"), "{err}");
        let (code, _, err) = run_args(&["sync"], &[("TOKEN_MANAGER_URL", "http://127.0.0.1:9")]);
        assert_eq!(code, 2);
        assert!(err.contains("TOKEN_MANAGER_API_KEY is not set"), "{err}");
        let (code, _, err) = run_args(
            &["--url", "http://127.0.0.1:9", "get", ".."],
            &[("TOKEN_MANAGER_API_KEY", "k")],
        );
        assert_eq!(code, 2, "{err}");
    }

    #[test]
    fn unreachable_is_exit_3() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}");
        let (code, _, err) = run_args(
            &["--url", &url, "--json", "sync"],
            &[("TOKEN_MANAGER_API_KEY", KEY)],
        );
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("could not connect"), "{err}");
        assert!(!err.contains(KEY));
    }

    #[test]
    fn timeouts_exit_3() {
        // Accepts but never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hold = std::thread::spawn(move || {
            let conns: Vec<_> = (0..1).filter_map(|_| listener.accept().ok()).collect();
            std::thread::sleep(std::time::Duration::from_secs(2));
            drop(conns);
        });
        let (code, _, err) = run_args(
            &["--url", &url, "--timeout", "1", "cleanup"],
            &[("TOKEN_MANAGER_API_KEY", KEY)],
        );
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("within 1s"), "{err}");
        hold.join().unwrap();
    }
}
