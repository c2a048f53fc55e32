//! Human output in the seed's layout ("🔄 SUPABASE TOKEN MANAGER", "✅ Sync successful: …",
//! "📊 TOKEN STATUS:", …), with the new figures in the same style. Pure functions from the
//! API's answer (the `api_model` types the Worker serialises) to text with anstyle colours;
//! the caller strips them (anstream) when the stream is no colour terminal.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use api_model::{
    AccountState, AccountsReport, AuditReport, CleanupReport, HealthReport, ListReport, Outcome,
    RenewOutcome, RenewReport, RestoreReport, StatusReport, SyncReport, TokenReport,
};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::duration::format_seconds;
use crate::error::CliError;

/// How many synced accounts are listed before "... (and more)", as in the seed.
pub const ACCOUNTS_SHOWN: usize = 5;

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const GREEN: Style = AnsiColor::Green.on_default();
const RED: Style = AnsiColor::Red.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const MAGENTA: Style = AnsiColor::Magenta.on_default();

fn paint(style: Style, s: &str) -> String {
    format!("{style}{s}{style:#}")
}

/// The text without its colour codes, for a stream that shows none.
pub fn plain(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}

/// A timestamp exactly as the Worker serialised it (RFC 3339, `Z`).
fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A timestamp to the second, for table cells.
fn ts_short(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn ts_or(t: Option<&DateTime<Utc>>, none: &str) -> String {
    t.map_or_else(|| none.to_string(), ts)
}

/// The seed's banner, printed before every human-readable command.
pub fn header() -> String {
    format!(
        "{}\n{}\n",
        paint(BOLD, "🔄 SUPABASE TOKEN MANAGER"),
        paint(DIM, &"=".repeat(60))
    )
}

/// The line the seed printed while the sync ran.
pub fn sync_preamble() -> String {
    "🔄 Syncing tokens from Redis to Supabase...\n".to_string()
}

/// A job's first line: `✅ <Job> successful: <message>` or `❌ <Job> failed: <message>`.
fn outcome(out: &mut String, job: &str, success: bool, message: &str) {
    let (style, head) = if success {
        (GREEN, format!("✅ {job} successful"))
    } else {
        (RED, format!("❌ {job} failed"))
    };
    if message.is_empty() {
        writeln!(out, "{}", paint(style, &head)).ok();
    } else {
        writeln!(out, "{} {message}", paint(style, &format!("{head}:"))).ok();
    }
}

/// The result of `POST /v1/sync`.
pub fn sync(r: &SyncReport) -> String {
    let mut out = String::new();
    outcome(&mut out, "Sync", r.success, &r.message);
    if !r.success {
        return out;
    }
    writeln!(out, "📊 Tokens synced: {}", r.tokens_synced).ok();
    writeln!(
        out,
        "   Inserted: {} | Updated: {} | Unchanged: {} | Deactivated: {}",
        r.inserted, r.updated, r.unchanged, r.deactivated
    )
    .ok();
    writeln!(out, "🔑 Key mappings: {}", r.key_mappings).ok();
    if !r.accounts.is_empty() {
        writeln!(out, "🏦 Accounts synced:").ok();
        for a in r.accounts.iter().take(ACCOUNTS_SHOWN) {
            writeln!(out, "   • {a}").ok();
        }
        if r.accounts.len() > ACCOUNTS_SHOWN {
            writeln!(out, "   {}", paint(DIM, "... (and more)")).ok();
        }
    }
    if !r.skipped.is_empty() {
        let head = format!("⚠️ Skipped keys: {}", r.skipped.len());
        writeln!(out, "{}", paint(YELLOW, &head)).ok();
        for s in &r.skipped {
            writeln!(out, "   • {} ({})", s.redis_key, s.reason).ok();
        }
    }
    if r.outcome == Outcome::RedisLossSuspected {
        if let Some(l) = &r.redis_loss {
            let head = format!(
                "🚨 Redis loss suspected ({}): {} of {} active tokens' keys are gone; none was deactivated",
                l.reason, l.missing, l.active_unexpired
            );
            writeln!(out, "{}", paint(RED, &head)).ok();
        }
        match (&r.restore, &r.restore_error) {
            (Some(restore), _) => out.push_str(&restore_lines(restore)),
            (None, Some(e)) => {
                let line = format!("❌ Restore failed: {e} (run `tokenctl restore`)");
                writeln!(out, "{}", paint(RED, &line)).ok();
            }
            (None, None) => {
                writeln!(
                    out,
                    "   Nothing restored (RESTORE_ON_LOSS is off): run `tokenctl restore`"
                )
                .ok();
            }
        }
    }
    writeln!(out, "🆔 Run: {} ({} ms)", r.run_id, r.duration_ms).ok();
    out
}

/// The result of `POST /v1/restore`.
pub fn restore(r: &RestoreReport) -> String {
    let mut out = String::new();
    let job = if r.dry_run {
        "Restore dry run"
    } else {
        "Restore"
    };
    outcome(&mut out, job, r.success, &r.message);
    if !r.success {
        return out;
    }
    out.push_str(&restore_lines(r));
    if let Some(run) = &r.run_id {
        writeln!(out, "🆔 Run: {run} ({} ms)", r.duration_ms).ok();
    }
    out
}

/// A restore's figures and keys (never a value), for `restore` and a sync that restored.
fn restore_lines(r: &RestoreReport) -> String {
    let mut out = String::new();
    let verb = if r.dry_run {
        "Would restore"
    } else {
        "Restored"
    };
    writeln!(
        out,
        "♻️ {verb}: {} | Already in Redis: {} | Skipped: {} | Inactive: {}",
        r.restored.len(),
        r.already_present.len(),
        r.skipped.len(),
        r.inactive
    )
    .ok();
    for k in r.restored.iter().take(ACCOUNTS_SHOWN) {
        writeln!(
            out,
            "   • {} ({}, {}, TTL {})",
            k.redis_key,
            k.value_format,
            k.account,
            format_seconds(i64::try_from(k.ttl_ms / 1000).unwrap_or(i64::MAX))
        )
        .ok();
    }
    if r.restored.len() > ACCOUNTS_SHOWN {
        writeln!(out, "   {}", paint(DIM, "... (and more)")).ok();
    }
    for s in &r.skipped {
        let key = s.redis_key.as_deref().unwrap_or("no key");
        let line = format!("   ⚠️ {} [{key}]: {}", s.account, s.reason);
        writeln!(out, "{}", paint(YELLOW, &line)).ok();
    }
    if r.deferred > 0 {
        let line = format!(
            "   {} tokens did not fit this invocation's subrequest budget: run `tokenctl restore` again",
            r.deferred
        );
        writeln!(out, "{}", paint(YELLOW, &line)).ok();
    }
    out
}

fn status_word(s: &str) -> String {
    match s {
        "succeeded" => paint(GREEN, s),
        "failed" => paint(RED, s),
        _ => paint(YELLOW, s),
    }
}

/// The result of `GET /v1/status`.
pub fn status(s: &StatusReport) -> String {
    let mut out = String::new();
    writeln!(out, "📊 TOKEN STATUS:").ok();
    writeln!(out, "   Supabase tokens: {}", s.supabase_tokens).ok();
    writeln!(out, "   Active tokens: {}", s.active_tokens).ok();
    writeln!(out, "   Redis tokens: {}", s.redis_tokens).ok();
    let needed = if s.sync_needed {
        paint(YELLOW, "true")
    } else {
        "false".into()
    };
    writeln!(out, "   Sync needed: {needed}").ok();
    let soon = s.expiring_soon.to_string();
    let soon = if s.expiring_soon > 0 {
        paint(YELLOW, &soon)
    } else {
        soon
    };
    writeln!(out, "   Expiring soon: {soon}").ok();
    writeln!(
        out,
        "   Last updated: {}",
        ts_or(s.last_updated.as_ref(), "never")
    )
    .ok();
    match &s.last_sync {
        None => {
            writeln!(out, "   Last sync: never").ok();
        }
        Some(ls) => {
            let at = ts(ls.finished_at.as_ref().unwrap_or(&ls.started_at));
            let mut line = format!("{} via {} at {at}", status_word(&ls.status), ls.trigger);
            if let Some(n) = ls.tokens_synced {
                write!(line, " ({n} tokens)").ok();
            }
            writeln!(out, "   Last sync: {line}").ok();
            if let Some(e) = ls.error.as_deref().filter(|e| !e.is_empty()) {
                writeln!(out, "   {}", paint(RED, &format!("Last sync error: {e}"))).ok();
            }
        }
    }
    if s.redis_loss_suspected {
        let since = ts_or(s.redis_loss_since.as_ref(), "unknown");
        let line = format!(
            "🚨 Redis loss suspected since {since}: {} active tokens' keys missing (nothing deactivated)",
            s.redis_loss_missing
        );
        writeln!(out, "   {}", paint(RED, &line)).ok();
    }
    if let Some(r) = &s.last_restore {
        let at = ts(r.finished_at.as_ref().unwrap_or(&r.started_at));
        let mut line = format!("{} via {} at {at}", status_word(&r.status), r.trigger);
        if let (Some(n), Some(p)) = (r.restored, r.already_present) {
            write!(line, " ({n} restored, {p} already present)").ok();
        }
        writeln!(out, "   Last restore: {line}").ok();
        if let Some(e) = r.error.as_deref().filter(|e| !e.is_empty()) {
            writeln!(
                out,
                "   {}",
                paint(RED, &format!("Last restore error: {e}"))
            )
            .ok();
        }
    }
    writeln!(out).ok();
    writeln!(out, "🕐 Recent tokens:").ok();
    if s.recent_tokens.is_empty() {
        writeln!(out, "   {}", paint(DIM, "(none)")).ok();
    }
    for t in &s.recent_tokens {
        let inactive = if t.is_active {
            String::new()
        } else {
            format!(" {}", paint(YELLOW, "[inactive]"))
        };
        let expires = ts_or(t.expires_at.as_ref(), "unknown");
        writeln!(
            out,
            "   • {} (expires: {expires}){inactive}",
            t.account_name
        )
        .ok();
    }
    out
}

/// The result of `GET /v1/tokens/{account}`. The token is shown: that is the point of `get`.
pub fn token(t: &TokenReport) -> String {
    let mut out = String::new();
    writeln!(out, "🔑 Token for {}:", t.account).ok();
    writeln!(out, "   Main account: {}", t.main_account).ok();
    writeln!(out, "   Token type: {}", t.token_type).ok();
    let mut expires = ts_or(t.expires_at.as_ref(), "unknown");
    match (t.expired, t.expires_in_seconds) {
        (_, Some(s)) if t.expired || s < 0 => {
            let ago = format!("(expired {} ago)", format_seconds(-s.min(0)));
            write!(expires, " {}", paint(RED, &ago)).ok();
        }
        (true, None) => {
            write!(expires, " {}", paint(RED, "(expired)")).ok();
        }
        (_, Some(s)) => {
            write!(expires, " (in {})", format_seconds(s)).ok();
        }
        (false, None) => {}
    }
    writeln!(out, "   Expires at: {expires}").ok();
    match &t.metadata {
        serde_json::Value::Object(m) if m.is_empty() => {}
        serde_json::Value::Null => {}
        m => {
            writeln!(out, "   Metadata: {m}").ok();
        }
    }
    if let Some(md) = &t.md_access_token {
        writeln!(out, "   Market-data token: {md}").ok();
    }
    writeln!(out, "   Token: {}", t.token).ok();
    out
}

/// The result of `GET /v1/tokens` as a table (metadata only; the API never sends tokens here).
pub fn list(l: &ListReport) -> String {
    let mut out = String::new();
    writeln!(out, "📋 Tokens: {}", l.count).ok();
    if l.tokens.is_empty() {
        writeln!(out, "   {}", paint(DIM, "(none)")).ok();
        return out;
    }
    let rows: Vec<Vec<String>> = l
        .tokens
        .iter()
        .map(|t| {
            vec![
                t.account_name.clone(),
                t.main_account.clone(),
                t.token_type.clone(),
                if t.is_active { "yes" } else { "no" }.into(),
                ts_or(t.expires_at.as_ref(), "-"),
                ts(&t.updated_at),
            ]
        })
        .collect();
    let head = [
        "ACCOUNT",
        "MAIN ACCOUNT",
        "TYPE",
        "ACTIVE",
        "EXPIRES AT",
        "UPDATED AT",
    ];
    table(&mut out, &head, &rows, |_, col, cell| {
        (col == 3 && cell == "no").then_some(YELLOW)
    });
    out
}

/// Writes `rows` under `head` as aligned columns, three spaces in; `style(row, column, cell)`
/// colours a cell (padding included, so columns stay aligned with or without colour).
fn table(
    out: &mut String,
    head: &[&str],
    rows: &[Vec<String>],
    style: impl Fn(usize, usize, &str) -> Option<Style>,
) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let cells: Vec<String> = head.iter().zip(&widths).map(|(h, w)| pad(h, *w)).collect();
    let line = format!("   {}", cells.join("  ").trim_end());
    writeln!(out, "{}", paint(BOLD, &line)).ok();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(j, (c, w))| {
                let padded = if j == r.len() - 1 {
                    c.clone()
                } else {
                    pad(c, *w)
                };
                match style(i, j, c) {
                    Some(st) => paint(st, &padded),
                    None => padded,
                }
            })
            .collect();
        writeln!(out, "   {}", cells.join("  ").trim_end()).ok();
    }
}

/// The colour of an account state: green fresh, yellow expiring, magenta renew_failed, red
/// missing_in_redis and expired, dim inactive.
fn state_style(state: AccountState) -> Style {
    match state {
        AccountState::Fresh => GREEN,
        AccountState::Expiring => YELLOW,
        AccountState::RenewFailed => MAGENTA,
        AccountState::MissingInRedis | AccountState::Expired => RED,
        AccountState::Inactive => DIM,
    }
}

/// Seconds until (or, negative, since) an expiry, for people: `in 55m`, `5m ago`.
fn expires_in(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 0 => format!("{} ago", format_seconds(-s)),
        Some(s) => format!("in {}", format_seconds(s)),
    }
}

/// The result of `GET /v1/accounts`: a summary of the states, then one row per account grouped
/// by main account (the main account named on its group's first row), coloured by state.
pub fn accounts(r: &AccountsReport) -> String {
    let mut out = String::new();
    let counts: Vec<String> = AccountState::ALL
        .iter()
        .filter_map(|state| {
            let n = r.states.get(state.as_str()).copied().unwrap_or(0);
            (n > 0).then(|| paint(state_style(*state), &format!("{n} {}", state.as_str())))
        })
        .collect();
    let summary = if counts.is_empty() {
        String::new()
    } else {
        format!(": {}", counts.join(", "))
    };
    writeln!(
        out,
        "🩺 Accounts: {} in {} main accounts{summary}",
        r.accounts, r.main_accounts
    )
    .ok();
    writeln!(
        out,
        "   Last sync: {}",
        ts_or(r.last_sync_at.as_ref(), "never")
    )
    .ok();
    if r.main.is_empty() {
        writeln!(out, "   {}", paint(DIM, "(none)")).ok();
        return out;
    }
    let mut rows = Vec::new();
    let mut states = Vec::new();
    for group in &r.main {
        for (i, a) in group.accounts.iter().enumerate() {
            let main = if i == 0 {
                group.main_account.clone()
            } else {
                String::new()
            };
            let read = a.last_read.as_ref().map_or_else(
                || "-".to_string(),
                |l| {
                    let at = ts_short(Some(&l.read_at));
                    format!("{at} {} by {}", l.outcome, printable(&l.key_name))
                },
            );
            let renewal = a
                .renewal
                .as_ref()
                .and_then(|x| x.state.clone())
                .unwrap_or_else(|| "-".into());
            rows.push(vec![
                main,
                a.account.clone(),
                a.state.as_str().to_string(),
                expires_in(a.expires_in_seconds),
                ts_short(a.last_seen_at.as_ref()),
                ts_short(a.last_synced_at.as_ref()),
                renewal,
                read,
            ]);
            states.push(a.state);
        }
    }
    let head = [
        "MAIN ACCOUNT",
        "ACCOUNT",
        "STATE",
        "EXPIRES",
        "LAST SEEN IN REDIS",
        "LAST SYNCED",
        "RENEWAL",
        "LAST READ",
    ];
    table(&mut out, &head, &rows, |row, col, _| {
        (col == 2).then(|| state_style(states[row]))
    });
    out
}

/// `s` with control characters (a terminal escape in a client's user agent) shown as `?`.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The result of `GET /v1/audit`: one row per read, newest first; 4xx outcomes yellow, 5xx red.
pub fn audit(r: &AuditReport) -> String {
    let mut out = String::new();
    writeln!(out, "🔎 Token reads: {}", r.count).ok();
    if r.reads.is_empty() {
        writeln!(out, "   {}", paint(DIM, "(none)")).ok();
        return out;
    }
    let rows: Vec<Vec<String>> = r
        .reads
        .iter()
        .map(|read| {
            vec![
                ts_short(Some(&read.read_at)),
                printable(&read.account_name),
                read.outcome.to_string(),
                printable(&read.key_name),
                read.client_ip
                    .as_deref()
                    .map_or_else(|| "-".into(), printable),
                read.user_agent
                    .as_deref()
                    .map_or_else(|| "-".into(), printable),
            ]
        })
        .collect();
    let head = [
        "READ AT",
        "ACCOUNT",
        "OUTCOME",
        "KEY",
        "CLIENT IP",
        "USER AGENT",
    ];
    table(&mut out, &head, &rows, |row, col, _| {
        let outcome = r.reads[row].outcome;
        match (col, outcome) {
            (2, 200..=299) => Some(GREEN),
            (2, 400..=499) => Some(YELLOW),
            (2, _) => Some(RED),
            _ => None,
        }
    });
    out
}

/// The result of `POST /v1/cleanup`.
pub fn cleanup(c: &CleanupReport) -> String {
    let mut out = String::new();
    outcome(&mut out, "Cleanup", c.success, &c.message);
    if c.success {
        writeln!(out, "🧹 Tokens cleaned: {}", c.cleaned).ok();
    }
    out
}

/// The result of `POST /v1/renew`: the outcome, then one line per session. Never a token.
pub fn renew(r: &RenewReport) -> String {
    let mut out = String::new();
    let title = if r.dry_run {
        "Renew (dry run)"
    } else {
        "Renew"
    };
    outcome(&mut out, title, r.success, &r.message);
    writeln!(
        out,
        "⏱️  Renewals in the last hour: {} of {}",
        r.renewals_last_hour, r.hourly_budget
    )
    .ok();
    if !r.dry_run {
        writeln!(
            out,
            "🔑 Redis keys written: {} | left to a bot's newer token: {}",
            r.keys_written, r.keys_conflicted
        )
        .ok();
    }
    if let Some(until) = &r.renewals_paused_until {
        let why = r
            .renewals_paused_reason
            .as_deref()
            .unwrap_or("no reason given");
        writeln!(
            out,
            "{} until {}: {why}",
            paint(YELLOW, "⏸️  Renewals paused"),
            ts(until)
        )
        .ok();
    }
    for s in &r.results {
        let (mark, word) = match s.outcome {
            RenewOutcome::Renewed => (paint(GREEN, "✅"), "renewed"),
            RenewOutcome::WouldRenew => (paint(GREEN, "✅"), "would renew"),
            RenewOutcome::Failed => (paint(RED, "❌"), "failed"),
            RenewOutcome::Skipped => (paint(YELLOW, "⏭️ "), "skipped"),
        };
        let n = s.accounts.len();
        let mut line = format!(
            "   {mark} {} ({n} account{}, {}) {word}",
            s.session,
            if n == 1 { "" } else { "s" },
            s.environment,
        );
        if let Some(at) = &s.new_expires_at {
            line.push_str(&format!(", now expires {}", ts(at)));
        }
        if let Some(reason) = &s.reason {
            line.push_str(&format!(": {reason}"));
        }
        writeln!(out, "{line}").ok();
    }
    out
}

/// The result of `GET /health`.
pub fn health(h: &HealthReport) -> String {
    let mut out = String::new();
    if h.status == "ok" {
        writeln!(out, "{} ok", paint(GREEN, "✅ Worker healthy:")).ok();
    } else {
        writeln!(out, "{} {}", paint(RED, "❌ Worker unhealthy:"), h.status).ok();
    }
    writeln!(out, "   service: {}", h.service).ok();
    writeln!(out, "   version: {}", h.version).ok();
    out
}

/// A warning line for stderr (never carries the key: no [`crate::config::Warning`] holds it).
pub fn warning(w: &crate::config::Warning) -> String {
    format!("{}\n", paint(YELLOW, &format!("⚠️ warning: {w}")))
}

/// The line printed on stderr for a failed run. Never contains the API key (no error carries it).
pub fn error(e: &CliError) -> String {
    format!("{} {}\n", paint(RED, "❌"), paint(RED, &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Reads an answer the way tokenctl does: through the Worker's own types.
    fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("a Worker-shaped answer")
    }

    #[test]
    fn accounts_colour_each_state_and_name_the_main_account_once() {
        let account = |name: &str, state: &str| {
            json!({
                "account": name, "key_type": "sub_account", "redis_key": format!("token:{name}"),
                "state": state, "is_active": state != "inactive", "expires_at": null,
                "expires_in_seconds": if state == "expired" { -60 } else { 600 },
                "last_seen_at": "2026-12-01T09:00:00.123Z", "last_synced_at": null,
                "last_read": if state == "fresh" {
                    json!({"read_at": "2026-12-01T09:01:00Z", "outcome": 200, "key_name": "bot\u{1b}[2J"})
                } else { Value::Null },
                "renewal": if state == "renew_failed" {
                    json!({"state": "renew_failed", "error": "HTTP 401"})
                } else { Value::Null },
            })
        };
        let states = [
            "expired",
            "inactive",
            "missing_in_redis",
            "renew_failed",
            "expiring",
            "fresh",
        ];
        let report: AccountsReport = from(json!({
            "success": true, "generated_at": "2026-12-01T09:02:00Z", "expiring_within_seconds": 600,
            "last_sync_at": null, "main_accounts": 1, "accounts": 6,
            "states": {"expired": 1, "inactive": 1, "missing_in_redis": 1, "renew_failed": 1,
                       "expiring": 1, "fresh": 1},
            "main": [{"main_account": "APEX_1", "state": "expired",
                      "accounts": states.iter().enumerate()
                          .map(|(i, s)| account(&format!("PAAPEX1000000{i}"), s))
                          .collect::<Vec<_>>()}],
        }));
        let text = accounts(&report);
        let styles = [RED, DIM, RED, MAGENTA, YELLOW, GREEN];
        for (i, (state, style)) in states.iter().zip(styles).enumerate() {
            let account = format!("PAAPEX1000000{i}");
            let row = text.lines().find(|l| l.contains(&account)).unwrap();
            assert!(row.contains(&format!("{style}{state}")), "{state}: {row:?}");
        }
        assert_eq!(text.matches("APEX_1 ").count(), 1, "{text}");
        let plain_text = plain(&text);
        assert!(plain_text.contains("1 expired, 1 inactive"), "{plain_text}");
        assert!(
            plain_text.contains("1m ago") && plain_text.contains("in 10m"),
            "{plain_text}"
        );
        assert!(plain_text.contains("2026-12-01T09:00:00Z"), "{plain_text}");
        assert!(
            plain_text.contains("by bot?[2J"),
            "no terminal escape from the API: {plain_text}"
        );
    }

    #[test]
    fn renew_lists_every_session_and_the_pause() {
        let report: RenewReport = from(json!({
            "success": false, "message": "Renewed 1 of 2 sessions (8 tokens); 1 failed, 0 skipped",
            "dry_run": false, "run_id": "7d0c", "candidates": 9, "sessions": 2, "renewed": 1,
            "failed": 1, "skipped": 0, "tokens_updated": 8, "keys_written": 8,
            "keys_conflicted": 1, "hourly_budget": 10, "renewals_last_hour": 2,
            "renewals_paused_until": "2026-12-01T10:01:00Z",
            "renewals_paused_reason": "Tradovate answered a penalty ticket (p-time 60 s)",
            "results": [
                {"session": "APEX_136189", "main_account": "APEX_136189",
                 "accounts": ["APEX_136189", "PAAPEX1361890000001"], "environment": "demo",
                 "expires_at": "2026-12-01T09:50:00Z", "outcome": "renewed", "reason": null,
                 "new_expires_at": "2026-12-01T11:20:00Z"},
                {"session": "APEX_266668", "main_account": "APEX_266668",
                 "accounts": ["APEX_266668"], "environment": "live",
                 "expires_at": "2026-12-01T09:55:00Z", "outcome": "failed",
                 "reason": "Tradovate answered a penalty ticket (p-time 60 s); every renewal is paused",
                 "new_expires_at": null}
            ],
            "duration_ms": 120
        }));
        let text = plain(&renew(&report));
        assert!(text.starts_with("❌ Renew"), "{text}");
        assert!(
            text.contains("Renewals in the last hour: 2 of 10"),
            "{text}"
        );
        assert!(
            text.contains("Renewals paused until 2026-12-01T10:01:00Z"),
            "{text}"
        );
        assert!(
            text.contains(
                "APEX_136189 (2 accounts, demo) renewed, now expires 2026-12-01T11:20:00Z"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "APEX_266668 (1 account, live) failed: Tradovate answered a penalty ticket"
            ),
            "{text}"
        );
    }

    fn seed_sync_json() -> Value {
        json!({
            "success": true,
            "message": "Synced 22 tokens from Redis to Supabase",
            "tokens_synced": 22,
            "inserted": 2,
            "updated": 3,
            "unchanged": 17,
            "deactivated": 1,
            "skipped": [{"redis_key": "token:BROKEN", "reason": "value is not a token"}],
            "key_mappings": 22,
            "accounts": ["APEX_136189", "APEX_266668", "APEX_272045",
                         "PAAPEX1361890000001", "PAAPEX1361890000002", "PAAPEX1361890000003"],
            "run_id": "7d0c",
            "duration_ms": 412,
            "something_new": [1, 2, 3]
        })
    }

    #[test]
    fn header_is_the_seeds() {
        assert_eq!(
            plain(&header()),
            "🔄 SUPABASE TOKEN MANAGER\n\
             ============================================================\n"
        );
        assert_eq!(
            header(),
            "\x1b[1m🔄 SUPABASE TOKEN MANAGER\x1b[0m\n\
             \x1b[2m============================================================\x1b[0m\n"
        );
    }

    #[test]
    fn sync_matches_the_seed_layout() {
        let r: SyncReport = from(seed_sync_json());
        let text = plain(&format!("{}{}{}", header(), sync_preamble(), sync(&r)));
        assert_eq!(
            text,
            "\
🔄 SUPABASE TOKEN MANAGER
============================================================
🔄 Syncing tokens from Redis to Supabase...
✅ Sync successful: Synced 22 tokens from Redis to Supabase
📊 Tokens synced: 22
   Inserted: 2 | Updated: 3 | Unchanged: 17 | Deactivated: 1
🔑 Key mappings: 22
🏦 Accounts synced:
   • APEX_136189
   • APEX_266668
   • APEX_272045
   • PAAPEX1361890000001
   • PAAPEX1361890000002
   ... (and more)
⚠️ Skipped keys: 1
   • token:BROKEN (value is not a token)
🆔 Run: 7d0c (412 ms)
"
        );
    }

    #[test]
    fn sync_in_colour() {
        let r: SyncReport = from(seed_sync_json());
        let text = sync(&r);
        assert!(text.starts_with(
            "\x1b[32m✅ Sync successful:\x1b[0m Synced 22 tokens from Redis to Supabase\n"
        ));
        assert!(text.contains("   \x1b[2m... (and more)\x1b[0m\n"));
        assert!(text.contains("\x1b[33m⚠️ Skipped keys: 1\x1b[0m\n"));
        assert!(!plain(&text).contains('\x1b'));
    }

    #[test]
    fn and_more_only_past_five_accounts() {
        let mut v = seed_sync_json();
        v["accounts"] = json!(["A1", "A2", "A3", "A4", "A5"]);
        v["skipped"] = json!([]);
        let five: SyncReport = from(v);
        let text = plain(&sync(&five));
        assert!(!text.contains("(and more)"), "{text}");
        assert!(text.contains("   • A5\n🆔 Run"), "{text}");
        let six = SyncReport {
            accounts: (1..=6).map(|i| format!("A{i}")).collect(),
            ..five
        };
        let text = plain(&sync(&six));
        assert!(text.contains("   • A5\n   ... (and more)\n"), "{text}");
        assert!(!text.contains("A6"));
    }

    #[test]
    fn sync_failure() {
        let mut v = seed_sync_json();
        v["success"] = json!(false);
        v["message"] = json!("Redis unreachable");
        let r: SyncReport = from(v);
        assert_eq!(plain(&sync(&r)), "❌ Sync failed: Redis unreachable\n");
        let r = SyncReport {
            message: String::new(),
            ..r
        };
        assert_eq!(plain(&sync(&r)), "❌ Sync failed\n");
    }

    #[test]
    fn a_renamed_or_missing_field_is_refused_not_guessed() {
        let mut v = seed_sync_json();
        v.as_object_mut().unwrap().remove("tokens_synced");
        let err = serde_json::from_value::<SyncReport>(v).unwrap_err();
        assert!(
            err.to_string().contains("missing field `tokens_synced`"),
            "{err}"
        );
    }

    fn seed_status_json() -> Value {
        json!({
            "success": true,
            "supabase_tokens": 22,
            "active_tokens": 21,
            "redis_tokens": 22,
            "redis_tokens_source": "last_sync",
            "redis_counted_at": "2025-10-17T13:45:00Z",
            "sync_needed": false,
            "last_updated": "2025-10-17T13:45:00.125Z",
            "last_sync": {
                "run_id": "7d0c", "trigger": "cron", "status": "succeeded",
                "started_at": "2025-10-17T13:44:59Z",
                "finished_at": "2025-10-17T13:45:00Z",
                "tokens_synced": 22, "error": null
            },
            "expiring_soon": 2,
            "expiring_within_seconds": 600,
            "recent_tokens": [
                {"account_name": "APEX_136189", "main_account": "APEX_136189",
                 "expires_at": "2025-10-17T14:45:00Z", "is_active": true},
                {"account_name": "APEX_266668", "main_account": "APEX_266668",
                 "expires_at": "2025-10-17T14:45:00Z", "is_active": true},
                {"account_name": "APEX_272045", "main_account": "APEX_272045",
                 "expires_at": null, "is_active": false}
            ]
        })
    }

    #[test]
    fn status_matches_the_seed_layout() {
        let s: StatusReport = from(seed_status_json());
        assert_eq!(
            plain(&status(&s)),
            "\
📊 TOKEN STATUS:
   Supabase tokens: 22
   Active tokens: 21
   Redis tokens: 22
   Sync needed: false
   Expiring soon: 2
   Last updated: 2025-10-17T13:45:00.125Z
   Last sync: succeeded via cron at 2025-10-17T13:45:00Z (22 tokens)

🕐 Recent tokens:
   • APEX_136189 (expires: 2025-10-17T14:45:00Z)
   • APEX_266668 (expires: 2025-10-17T14:45:00Z)
   • APEX_272045 (expires: unknown) [inactive]
"
        );
    }

    #[test]
    fn status_in_colour_and_edge_cases() {
        let mut v = seed_status_json();
        v["sync_needed"] = json!(true);
        v["last_sync"]["status"] = json!("failed");
        v["last_sync"]["error"] = json!("Upstash answered 500");
        let s: StatusReport = from(v);
        let text = status(&s);
        assert!(
            text.contains("   Sync needed: \x1b[33mtrue\x1b[0m\n"),
            "{text}"
        );
        assert!(
            text.contains("   Last sync: \x1b[31mfailed\x1b[0m via cron"),
            "{text}"
        );
        assert!(text.contains("   \x1b[31mLast sync error: Upstash answered 500\x1b[0m\n"));
        assert!(text.contains("   Expiring soon: \x1b[33m2\x1b[0m\n"));
        assert!(text.contains("(expires: unknown) \x1b[33m[inactive]\x1b[0m\n"));

        let s: StatusReport = from(json!({
            "success": true, "supabase_tokens": 0, "active_tokens": 0, "redis_tokens": 0,
            "redis_tokens_source": "none", "redis_counted_at": null, "sync_needed": false, "last_updated": null, "last_sync": null,
            "expiring_soon": 0, "expiring_within_seconds": 600, "recent_tokens": []
        }));
        assert_eq!(
            plain(&status(&s)),
            "\
📊 TOKEN STATUS:
   Supabase tokens: 0
   Active tokens: 0
   Redis tokens: 0
   Sync needed: false
   Expiring soon: 0
   Last updated: never
   Last sync: never

🕐 Recent tokens:
   (none)
"
        );
    }

    fn token_json() -> Value {
        json!({
            "success": true,
            "account": "PAAPEX1361890000001",
            "main_account": "APEX_136189",
            "token": "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln",
            "token_type": "bearer",
            "md_access_token": null,
            "expires_at": "2025-10-17T14:45:00Z",
            "expired": false,
            "expires_in_seconds": 3570,
            "updated_at": "2025-10-17T13:45:00Z",
            "metadata": {"redis_key": "token:PAAPEX1361890000001", "expires_source": "jwt_exp"}
        })
    }

    #[test]
    fn token_shows_expiry_and_the_token() {
        let t: TokenReport = from(token_json());
        assert_eq!(
            plain(&token(&t)),
            "\
🔑 Token for PAAPEX1361890000001:
   Main account: APEX_136189
   Token type: bearer
   Expires at: 2025-10-17T14:45:00Z (in 59m 30s)
   Metadata: {\"expires_source\":\"jwt_exp\",\"redis_key\":\"token:PAAPEX1361890000001\"}
   Token: eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln
"
        );
        let mut v = token_json();
        v["expires_at"] = json!(null);
        v["expires_in_seconds"] = json!(null);
        v["metadata"] = json!({});
        v["md_access_token"] = json!("md-token");
        let t: TokenReport = from(v);
        assert_eq!(
            plain(&token(&t)),
            "🔑 Token for PAAPEX1361890000001:\n   Main account: APEX_136189\n   \
             Token type: bearer\n   Expires at: unknown\n   Market-data token: md-token\n   \
             Token: eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln\n"
        );
        let mut v = token_json();
        v["expired"] = json!(true);
        v["expires_in_seconds"] = json!(-90);
        let t: TokenReport = from(v);
        assert!(token(&t).contains("14:45:00Z \x1b[31m(expired 1m 30s ago)\x1b[0m"));
    }

    #[test]
    fn list_is_an_aligned_table() {
        let l: ListReport = from(json!({
            "success": true,
            "tokens": [
                {"account_name": "APEX_136189", "main_account": "APEX_136189",
                 "token_type": "bearer", "expires_at": "2025-10-17T14:45:00Z",
                 "is_active": true, "updated_at": "2025-10-17T13:45:00Z", "token_length": 900,
                 "created_at": "2025-10-17T13:00:00Z", "last_synced_at": null},
                {"account_name": "PAAPEX1361890000001", "main_account": "APEX_136189",
                 "token_type": "bearer", "expires_at": null, "token_length": 900,
                 "is_active": false, "updated_at": "2025-10-17T13:40:00Z",
                 "created_at": "2025-10-17T13:00:00Z", "last_synced_at": null}
            ],
            "count": 2, "limit": 100, "offset": 0
        }));
        assert_eq!(
            plain(&list(&l)),
            "\
📋 Tokens: 2
   ACCOUNT              MAIN ACCOUNT  TYPE    ACTIVE  EXPIRES AT            UPDATED AT
   APEX_136189          APEX_136189   bearer  yes     2025-10-17T14:45:00Z  2025-10-17T13:45:00Z
   PAAPEX1361890000001  APEX_136189   bearer  no      -                     2025-10-17T13:40:00Z
"
        );
        assert!(list(&l).contains("\x1b[33mno    \x1b[0m"));
        let empty = ListReport {
            tokens: Vec::new(),
            count: 0,
            ..l
        };
        assert_eq!(plain(&list(&empty)), "📋 Tokens: 0\n   (none)\n");
    }

    #[test]
    fn restore_lists_keys_and_reasons_never_a_value() {
        let r: RestoreReport = from(json!({
            "success": true, "dry_run": false,
            "message": "Restored 1 tokens to Redis (1 already present, 1 skipped)",
            "restored": [{"account": "APEX_1", "redis_key": "token:APEX_1", "ttl_ms": 3_600_000, "value_format": "json"}],
            "already_present": [{"account": "APEX_2", "redis_key": "token:APEX_2"}],
            "skipped": [{"account": "APEX_3", "redis_key": null, "reason": "no Redis key is recorded"}],
            "deferred": 4, "inactive": 2, "run_id": "r", "duration_ms": 9
        }));
        assert_eq!(
            plain(&restore(&r)),
            "✅ Restore successful: Restored 1 tokens to Redis (1 already present, 1 skipped)\n\
             ♻️ Restored: 1 | Already in Redis: 1 | Skipped: 1 | Inactive: 2\n\
             \u{20}  • token:APEX_1 (json, APEX_1, TTL 1h)\n\
             \u{20}  ⚠️ APEX_3 [no key]: no Redis key is recorded\n\
             \u{20}  4 tokens did not fit this invocation's subrequest budget: run `tokenctl restore` again\n\
             🆔 Run: r (9 ms)\n"
        );
        let dry = RestoreReport {
            dry_run: true,
            run_id: None,
            ..r
        };
        assert!(plain(&restore(&dry)).starts_with("✅ Restore dry run successful"));
        assert!(plain(&restore(&dry)).contains("Would restore: 1"));
    }

    #[test]
    fn a_sync_that_suspects_a_loss_says_so_and_what_it_restored() {
        let r: SyncReport = from(json!({
            "success": true, "message": "Synced 0 tokens", "outcome": "redis_loss_suspected",
            "tokens_synced": 0, "inserted": 0, "updated": 0, "unchanged": 0, "deactivated": 0,
            "skipped": [], "key_mappings": 0, "accounts": [], "run_id": "r", "duration_ms": 5,
            "redis_loss": {"missing": 22, "active_unexpired": 22, "redis_token_keys": 0,
                           "threshold_percent": 50, "min_missing": 3, "reason": "redis_empty"},
            "restore": null, "restore_error": "Upstash Redis answered HTTP 500"
        }));
        let text = plain(&sync(&r));
        assert!(
            text.contains("🚨 Redis loss suspected (redis_empty): 22 of 22"),
            "{text}"
        );
        assert!(
            text.contains("❌ Restore failed: Upstash Redis answered HTTP 500"),
            "{text}"
        );
        // A Worker from before loss detection sends none of these fields.
        let old: SyncReport = from(json!({
            "success": true, "message": "Synced 1 tokens", "tokens_synced": 1, "inserted": 1,
            "updated": 0, "unchanged": 0, "deactivated": 0, "skipped": [], "key_mappings": 1,
            "accounts": ["A"], "run_id": "r", "duration_ms": 5
        }));
        assert_eq!(old.outcome, Outcome::Synced);
        assert!(!plain(&sync(&old)).contains("Redis loss"));
    }

    #[test]
    fn cleanup_and_health() {
        let c: CleanupReport = from(json!({
            "success": true, "cleaned": 3, "message": "Cleaned up 3 expired tokens", "run_id": "r",
            "pruned_runs": 0
        }));
        assert_eq!(
            plain(&cleanup(&c)),
            "✅ Cleanup successful: Cleaned up 3 expired tokens\n🧹 Tokens cleaned: 3\n"
        );
        assert_eq!(
            cleanup(&c),
            "\x1b[32m✅ Cleanup successful:\x1b[0m Cleaned up 3 expired tokens\n🧹 Tokens cleaned: 3\n"
        );
        let h = HealthReport::ok("0.1.0");
        assert_eq!(
            plain(&health(&h)),
            "✅ Worker healthy: ok\n   service: token-manager\n   version: 0.1.0\n"
        );
        let h = HealthReport {
            status: "degraded".into(),
            ..h
        };
        assert!(plain(&health(&h)).starts_with("❌ Worker unhealthy: degraded\n"));
    }

    #[test]
    fn error_line() {
        let e = CliError::Api(crate::error::ApiError::from_response(
            404,
            br#"{"error":{"code":"account_not_found","message":"No token for account NOPE"}}"#
                .to_vec(),
        ));
        assert_eq!(
            plain(&error(&e)),
            "❌ API error 404 (account_not_found): No token for account NOPE\n"
        );
    }
}
