//! One tokenctl run: resolve configuration, call the API, print the answer, pick the exit code.

use std::collections::HashMap;
use std::io::Write;

use serde_json::{Map, Value};

use crate::cli::{Cli, Command};
use crate::client::{validate_account, Call, Client, ListFilter, Response};
use crate::config::{resolve, Overrides};
use crate::error::{cut, CliError, EXIT_OK};
use crate::model::{Cleanup, Health, Status, SyncReport, TokenInfo, TokenList};
use crate::render::{self, Style};
use crate::spinner::Spinner;

/// What a run needs from its surroundings, so tests can supply their own.
pub struct Context<'a> {
    /// Looks up a process environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The content of `./.env` (empty when there is none).
    pub dotenv: HashMap<String, String>,
    /// Whether stdout is a terminal (colour; trailing newline after `--json`).
    pub stdout_is_terminal: bool,
    /// Whether stderr is a terminal (colour of errors; spinner).
    pub stderr_is_terminal: bool,
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
        Command::Health => Call::Health,
    })
}

/// Runs a parsed command line, writing the answer to `out`, and returns the exit code.
/// Errors go to `err` as one line; a closed stdout pipe (`| head`) ends quietly with 0.
pub fn run(cli: &Cli, ctx: &Context<'_>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let no_color_env = (ctx.env)("NO_COLOR");
    let err_style = Style::detect(
        ctx.stderr_is_terminal,
        cli.no_color,
        no_color_env.as_deref(),
    );
    match execute(cli, ctx, out) {
        Ok(()) => EXIT_OK,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            let _ = out.flush();
            let _ = err.write_all(render::error(&e, err_style).as_bytes());
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

fn as_object(resp: &Response) -> Result<Map<String, Value>, CliError> {
    match serde_json::from_slice::<Value>(&resp.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(CliError::Unexpected(format!(
            "HTTP {} but the body is not a JSON object: {:?}",
            resp.status,
            cut(String::from_utf8_lossy(&resp.body).trim(), 200)
        ))),
    }
}

/// Checks a 2xx answer for a reported failure (`success: false`, unhealthy).
fn reported_failure(call: &Call, body: &Map<String, Value>) -> Option<CliError> {
    let message = || {
        body.get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string()
    };
    match call {
        Call::Sync | Call::Cleanup
            if body.get("success").and_then(Value::as_bool) == Some(false) =>
        {
            Some(CliError::Failed(format!(
                "{} failed: {}",
                call.name(),
                message()
            )))
        }
        Call::Health => match body.get("status").and_then(Value::as_str) {
            Some("ok") => None,
            Some(s) => Some(CliError::Failed(format!("the Worker reports status {s:?}"))),
            None => Some(CliError::Failed(
                "the Worker's health answer has no status".into(),
            )),
        },
        _ => None,
    }
}

fn execute(cli: &Cli, ctx: &Context<'_>, out: &mut dyn Write) -> Result<(), CliError> {
    let call = call_for(&cli.command)?;
    let overrides = Overrides {
        url: cli.url.clone(),
        api_key: cli.api_key.clone(),
    };
    let settings = resolve(
        &overrides,
        ctx.env,
        &ctx.dotenv,
        call.needs_key().then(|| call.name()),
    )?;
    let client = Client::new(&settings, cli.timeout)?;

    let raw = matches!(cli.command, Command::Get { raw: true, .. });
    let human = !raw && !cli.json;
    let no_color_env = (ctx.env)("NO_COLOR");
    let st = Style::detect(
        ctx.stdout_is_terminal,
        cli.no_color,
        no_color_env.as_deref(),
    );

    if human {
        let mut pre = render::header(st);
        if call == Call::Sync {
            pre.push_str(&render::sync_preamble(st));
        }
        write(out, pre.as_bytes())?;
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
        let info = TokenInfo::from_json(&as_object(&resp)?);
        let token = info
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CliError::Unexpected("the answer has no token".into()))?;
        return write(out, format!("{token}\n").as_bytes());
    }

    if cli.json {
        write(out, &resp.body)?;
        if ctx.stdout_is_terminal && !resp.body.ends_with(b"\n") {
            write(out, b"\n")?;
        }
        // A script still learns about a reported failure from the exit code.
        return match serde_json::from_slice::<Value>(&resp.body) {
            Ok(Value::Object(m)) => reported_failure(&call, &m).map_or(Ok(()), Err),
            _ => Ok(()),
        };
    }

    let body = as_object(&resp)?;
    let text = match &call {
        Call::Sync => render::sync(&SyncReport::from_json(&body), st),
        Call::Status => render::status(&Status::from_json(&body), st),
        Call::Get(_) => render::token(&TokenInfo::from_json(&body), st),
        Call::List(_) => render::list(&TokenList::from_json(&body), st),
        Call::Cleanup => render::cleanup(&Cleanup::from_json(&body), st),
        Call::Health => render::health(&Health::from_json(&body), st),
    };
    write(out, text.as_bytes())?;
    reported_failure(&call, &body).map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    //! Whole runs against a canned HTTP server on 127.0.0.1, checking bytes out and exit codes.
    use super::*;
    use clap::Parser;
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
            dotenv: HashMap::new(),
            stdout_is_terminal: false,
            stderr_is_terminal: false,
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

    #[test]
    fn sync_human_sends_post_with_bearer_key() {
        let body = r#"{"success":true,"message":"Synced 1 tokens from Redis to Supabase","tokens_synced":1,"key_mappings":1,"accounts":["APEX_136189"]}"#;
        let s = serve(vec![(200, body)]);
        let (code, out, err) = run_args(&["--url", &s.url, "--api-key", KEY, "sync"], &[]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "🔄 SUPABASE TOKEN MANAGER\n\
             ============================================================\n\
             🔄 Syncing tokens from Redis to Supabase...\n\
             ✅ Sync successful: Synced 1 tokens from Redis to Supabase\n\
             📊 Tokens synced: 1\n🔑 Key mappings: 1\n🏦 Accounts synced:\n   • APEX_136189\n"
        );
        assert!(err.is_empty());
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
        let body = r#"{"account":"APEX_136189","token":"eyJ.abc.def","expired":false}"#;
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
        assert_eq!((code, out.as_str(), err.as_str()), (0, "eyJ.abc.def\n", ""));
        assert!(s.seen.lock().unwrap()[0].starts_with("GET /v1/tokens/APEX_136189 "));
    }

    #[test]
    fn api_errors_exit_1_with_code_and_message_on_stderr() {
        let gone = r#"{"error":{"code":"token_expired","message":"Token for CLI_X expired"}}"#;
        let s = serve(vec![(410, gone), (410, gone)]);
        let (code, out, err) = run_args(
            &["--url", &s.url, "--api-key", KEY, "get", "CLI_X", "--raw"],
            &[],
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
        assert!(err.starts_with("❌ API error 401 (unauthorized): Missing or unknown API key"));
        assert!(!out.contains(KEY) && !err.contains(KEY));
    }

    #[test]
    fn success_false_is_exit_1() {
        let s = serve(vec![(200, r#"{"success":false,"message":"lock busy"}"#)]);
        let (code, out, err) = run_args(&["--url", &s.url, "--api-key", KEY, "cleanup"], &[]);
        assert_eq!(code, 1);
        assert!(out.contains("❌ Cleanup failed: lock busy"));
        assert_eq!(err, "❌ cleanup failed: lock busy\n");
    }

    #[test]
    fn list_sends_filters_and_health_sends_no_key() {
        let s = serve(vec![
            (200, r#"{"tokens":[],"count":0}"#),
            (200, r#"{"status":"ok"}"#),
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
        assert!(out.ends_with("✅ Worker healthy: ok\n"));
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
    fn non_json_success_is_exit_1() {
        let s = serve(vec![(200, "<html>hello</html>")]);
        let (code, _, err) = run_args(&["--url", &s.url, "--api-key", KEY, "status"], &[]);
        assert_eq!(code, 1);
        assert!(err.contains("not a JSON object"), "{err}");
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
            &["--url", "http://127.0.0.1:9", "--api-key", "k", "get", ".."],
            &[],
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
        let (code, _, err) = run_args(&["--url", &url, "--api-key", KEY, "--json", "sync"], &[]);
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
            &["--url", &url, "--api-key", KEY, "--timeout", "1", "cleanup"],
            &[],
        );
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("within 1s"), "{err}");
        hold.join().unwrap();
    }
}
