//! The command line: global flags and subcommands, with examples in `--help`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

use crate::duration::parse_duration;

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("the timeout must be more than 0s".into());
    }
    Ok(d)
}

/// `--since`/`--until`: an RFC 3339 time, or a duration meaning that long ago (`1h`, `2d`).
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let ago = parse_duration(s).map_err(|_| {
        format!("{s:?} is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a duration ago (90s, 10m, 2h, 1d)")
    })?;
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        .ok_or_else(|| format!("{s:?} is too long ago"))
}

fn parse_within(s: &str) -> Result<u64, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if d.subsec_nanos() != 0 {
        return Err("use whole seconds, e.g. 90s or 10m".into());
    }
    Ok(d.as_secs())
}

const GLOBAL: &str = "Global options";

const MAIN_AFTER_HELP: &str = "\
Configuration:
  TOKEN_MANAGER_URL and TOKEN_MANAGER_API_KEY are read from the environment, or from a .env
  file in the current directory; --url and --api-key-file override both. A URL that only
  ./.env gives is used only with ./.env's own key. http:// is refused except to this machine
  (127.0.0.1, ::1, localhost) unless --insecure.

Exit codes:
  0 success, 1 the API answered an error, 2 usage or configuration, 3 network failure.

Examples:
  tokenctl sync
  tokenctl status
  tokenctl get APEX_136189
  TOKEN=$(tokenctl get APEX_136189 --raw)
  tokenctl list --main-account APEX_136189 --active true
  tokenctl list --expiring-within 10m
  tokenctl --json status | jq .sync_needed
  tokenctl cleanup
  tokenctl restore --dry-run
  tokenctl renew --dry-run
  tokenctl accounts
  tokenctl audit --account APEX_136189 --since 1h";

/// Command-line client for the token-manager Worker.
#[derive(Debug, Parser)]
#[command(
    name = "tokenctl",
    version,
    about = "Command-line client for the token-manager Worker: sync Tradovate tokens from Redis \
             to Supabase, check status, fetch tokens.",
    after_help = MAIN_AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// The Worker's base URL [env: TOKEN_MANAGER_URL]
    #[arg(long, global = true, value_name = "URL", help_heading = GLOBAL)]
    pub url: Option<String>,

    /// Read the API key from the first line of FILE, or from standard input with `-`: the
    /// admin key for sync/cleanup, the read key is enough for status/get/list
    /// [env: TOKEN_MANAGER_API_KEY]
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub api_key_file: Option<PathBuf>,

    /// The API key itself (discouraged, with a warning: it shows in `ps` and shell history)
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        conflicts_with = "api_key_file",
        help_heading = GLOBAL
    )]
    pub api_key: Option<String>,

    /// Allow http:// to a host other than this machine (the key and tokens travel unencrypted)
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub insecure: bool,

    /// Print the API's JSON answer exactly as received (for scripts)
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Give up on a request after this long (e.g. 30s, 2m)
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_timeout,
        help_heading = GLOBAL
    )]
    pub timeout: Duration,

    /// No colour, even on a terminal (NO_COLOR=1 also works; CLICOLOR_FORCE=1 forces it)
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_color: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every token from Redis into Supabase (POST /v1/sync; admin key)
    #[command(after_help = "\
Examples:
  tokenctl sync
  tokenctl --json sync | jq .tokens_synced
  */30 * * * * cd /path/to/project && tokenctl --no-color sync >> logs/token_sync.log 2>&1")]
    Sync,

    /// Token counts in Supabase and Redis, last sync, recent tokens (GET /v1/status)
    #[command(after_help = "\
Examples:
  tokenctl status
  tokenctl --json status | jq .sync_needed")]
    Status,

    /// Fetch one account's token, decrypted, with its expiry (GET /v1/tokens/{account})
    #[command(after_help = "\
An expired or inactive token is refused by the API (HTTP 410): exit code 1, nothing on stdout.

Examples:
  tokenctl get APEX_136189
  TOKEN=$(tokenctl get APEX_136189 --raw)
  tokenctl --json get PAAPEX1361890000001 | jq -r .expires_at")]
    Get {
        /// Account name, e.g. APEX_136189 or PAAPEX1361890000001
        account: String,

        /// Print only the token and a newline (overrides --json)
        #[arg(long)]
        raw: bool,
    },

    /// List token metadata, never the tokens themselves (GET /v1/tokens)
    #[command(after_help = "\
Examples:
  tokenctl list
  tokenctl list --main-account APEX_136189
  tokenctl list --active true --expiring-within 10m
  tokenctl --json list --active false | jq -r '.tokens[].account_name'")]
    List {
        /// Only tokens of this main account, e.g. APEX_136189
        #[arg(long, value_name = "M")]
        main_account: Option<String>,

        /// Only active (true) or inactive (false) tokens
        #[arg(long, value_name = "true|false", action = ArgAction::Set)]
        active: Option<bool>,

        /// Only tokens expiring within this long: 90s, 10m, 2h, 1d
        #[arg(long, value_name = "DURATION", value_parser = parse_within)]
        expiring_within: Option<u64>,
    },

    /// Mark expired tokens inactive (POST /v1/cleanup; admin key)
    #[command(after_help = "\
Examples:
  tokenctl cleanup
  0 2 * * * cd /path/to/project && tokenctl --no-color cleanup >> logs/token_cleanup.log 2>&1")]
    Cleanup,

    /// Write active, unexpired tokens back to Redis after Redis lost them (POST /v1/restore;
    /// admin key)
    #[command(after_help = "\
Each token goes back to the key it was read from, in the format it was read in, with
SET NX PX <time left>: a key that exists (a bot logged in again) is never overwritten, and
expired, inactive or undecryptable tokens are never written. A sync that finds Redis emptied
restores by itself (RESTORE_ON_LOSS); this is the manual way.

Examples:
  tokenctl restore --dry-run
  tokenctl restore
  tokenctl --json restore | jq '.restored | length'")]
    Restore {
        /// Only list what would be written; write and record nothing
        #[arg(long)]
        dry_run: bool,

        /// Also restore tokens whose expiry is unknown, with the Worker's
        /// RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS as their TTL
        #[arg(long)]
        include_unknown_expiry: bool,
    },
    /// Renew Tradovate tokens that expire soon, once per session (POST /v1/renew; admin key)
    #[command(after_help = "\
Renews every session (accounts sharing one token) whose token expires within
RENEW_BEFORE_MINUTES, writes the new token to Redis and Supabase, and says per session what
happened. Exit code 1 when a session failed or a penalty paused renewals.

Examples:
  tokenctl renew --dry-run
  tokenctl renew
  tokenctl --json renew | jq '.results[] | {session, outcome, reason}'")]
    Renew {
        /// Only say what a pass would do: no Tradovate call, no write
        #[arg(long)]
        dry_run: bool,
    },

    /// The health of every account, coloured by state, never a token (GET /v1/accounts)
    #[command(after_help = "\
One row per account, grouped by main account (its own token first): its state, expiry, when a
sync last saw its key in Redis, when a sync last wrote it, its latest read and renewal state.
States, worst first (the first that applies wins): expired, inactive, missing_in_redis,
renew_failed, expiring, fresh. A read key limited to main accounts sees only those.

Examples:
  tokenctl accounts
  tokenctl --json accounts | jq -r '.main[].accounts[] | select(.state != \"fresh\") | .account'")]
    Accounts,

    /// Who read which token, newest first (GET /v1/audit; admin key)
    #[command(after_help = "\
--since and --until take an RFC 3339 time or a duration meaning that long ago.

Examples:
  tokenctl audit
  tokenctl audit --account APEX_136189 --since 1h
  tokenctl audit --key bot-eu --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z
  tokenctl --json audit --limit 1000 | jq -r '.reads[] | select(.outcome != 200) | .account_name'")]
    Audit {
        /// Only reads of this account (exact name)
        #[arg(long, value_name = "A")]
        account: Option<String>,

        /// Only reads with this key name (or job:restore, job:renew)
        #[arg(long, value_name = "K")]
        key: Option<String>,

        /// Only reads at or after this time: RFC 3339, or a duration ago (1h, 2d)
        #[arg(long, value_name = "T", value_parser = parse_time)]
        since: Option<chrono::DateTime<chrono::Utc>>,

        /// Only reads before this time: RFC 3339, or a duration ago
        #[arg(long, value_name = "T", value_parser = parse_time)]
        until: Option<chrono::DateTime<chrono::Utc>>,

        /// At most this many reads (1 to 1000; the Worker's default is 100)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: Option<u16>,
    },

    /// Is the Worker up? (GET /health; no key needed)
    #[command(after_help = "\
Examples:
  tokenctl health
  tokenctl --url http://127.0.0.1:8787 health")]
    Health,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let c = Cli::try_parse_from([
            "tokenctl",
            "list",
            "--json",
            "--timeout",
            "5s",
            "--active",
            "false",
            "--expiring-within",
            "10m",
            "--main-account",
            "APEX_136189",
            "--no-color",
        ])
        .unwrap();
        assert!(c.json && c.no_color);
        assert_eq!(c.timeout, Duration::from_secs(5));
        match c.command {
            Command::List {
                main_account,
                active,
                expiring_within,
            } => {
                assert_eq!(main_account.as_deref(), Some("APEX_136189"));
                assert_eq!(active, Some(false));
                assert_eq!(expiring_within, Some(600));
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from(["tokenctl", "status"]).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(30));
        let c = Cli::try_parse_from(["tokenctl", "restore", "--dry-run"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Restore {
                dry_run: true,
                include_unknown_expiry: false
            }
        ));
    }

    #[test]
    fn audit_times_are_rfc3339_or_a_duration_ago() {
        let c = Cli::try_parse_from([
            "tokenctl",
            "audit",
            "--since",
            "2h",
            "--until",
            "2026-12-01T09:00:00+01:00",
            "--limit",
            "5",
        ])
        .unwrap();
        let Command::Audit {
            since,
            until,
            limit,
            ..
        } = c.command
        else {
            panic!("audit")
        };
        let ago = chrono::Utc::now() - since.unwrap();
        assert!((7190..=7210).contains(&ago.num_seconds()), "{ago}");
        assert_eq!(until.unwrap().to_rfc3339(), "2026-12-01T08:00:00+00:00");
        assert_eq!(limit, Some(5));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            vec!["tokenctl", "list", "--active", "yes"],
            vec!["tokenctl", "list", "--expiring-within", "soon"],
            vec!["tokenctl", "--timeout", "0s", "status"],
            vec!["tokenctl", "get"],
            vec![
                "tokenctl",
                "--api-key",
                "k",
                "--api-key-file",
                "f",
                "status",
            ],
            vec!["tokenctl", "list", "--expiring-within", "500ms"],
            vec!["tokenctl", "frobnicate"],
            vec!["tokenctl", "restore", "--dry-run=maybe"],
            vec!["tokenctl", "audit", "--since", "yesterday"],
            vec!["tokenctl", "audit", "--limit", "0"],
            vec!["tokenctl", "audit", "--limit", "1001"],
        ] {
            let e = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }
}
