//! Human output in the seed's layout ("🔄 SUPABASE TOKEN MANAGER", "✅ Sync successful: …",
//! "📊 TOKEN STATUS:", …), with the new figures in the same style. Pure functions from the API's
//! answer to text, so they can be tested byte for byte, with and without colour.

use std::fmt::Write as _;

use crate::duration::format_seconds;
use crate::error::CliError;
use crate::model::{Cleanup, ExpiringSoon, Health, Status, SyncReport, TokenInfo, TokenList};

/// How many synced accounts are listed before "... (and more)", as in the seed.
pub const ACCOUNTS_SHOWN: usize = 5;

/// Whether to emit ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// `true` only for a terminal, without `--no-color` or `NO_COLOR`.
    pub color: bool,
}

impl Style {
    /// No colour at all.
    pub const PLAIN: Style = Style { color: false };
    /// ANSI colours.
    pub const COLOR: Style = Style { color: true };

    /// Decides colour for one stream: only a terminal, and only when neither `--no-color` nor
    /// a non-empty `NO_COLOR` says otherwise.
    pub fn detect(is_terminal: bool, no_color_flag: bool, no_color_env: Option<&str>) -> Style {
        let env_off = no_color_env.is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !no_color_flag && !env_off,
        }
    }

    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Bold.
    pub fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    /// Dim, for separators and asides.
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
    /// Green, for success.
    pub fn green(self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Red, for failures.
    pub fn red(self, s: &str) -> String {
        self.paint("31", s)
    }
    /// Yellow, for things that need attention.
    pub fn yellow(self, s: &str) -> String {
        self.paint("33", s)
    }
}

fn or_unknown(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The seed's banner, printed before every human-readable command.
pub fn header(st: Style) -> String {
    format!(
        "{}\n{}\n",
        st.bold("🔄 SUPABASE TOKEN MANAGER"),
        st.dim(&"=".repeat(60))
    )
}

/// The line the seed printed while the sync ran.
pub fn sync_preamble(_st: Style) -> String {
    "🔄 Syncing tokens from Redis to Supabase...\n".to_string()
}

/// The result of `POST /v1/sync`.
pub fn sync(r: &SyncReport, st: Style) -> String {
    let mut out = String::new();
    match (&r.message, r.success) {
        (Some(m), Some(false)) => writeln!(out, "{} {m}", st.red("❌ Sync failed:")),
        (None, Some(false)) => writeln!(out, "{}", st.red("❌ Sync failed")),
        (Some(m), _) => writeln!(out, "{} {m}", st.green("✅ Sync successful:")),
        (None, _) => writeln!(out, "{}", st.green("✅ Sync successful")),
    }
    .ok();
    let synced = r
        .tokens_synced
        .or((!r.accounts.is_empty()).then_some(r.accounts.len() as i64));
    if let Some(n) = synced {
        writeln!(out, "📊 Tokens synced: {n}").ok();
    }
    let figures: Vec<String> = [
        ("Inserted", r.inserted),
        ("Updated", r.updated),
        ("Unchanged", r.unchanged),
        ("Deactivated", r.deactivated),
    ]
    .into_iter()
    .filter_map(|(label, v)| v.map(|v| format!("{label}: {v}")))
    .collect();
    if !figures.is_empty() {
        writeln!(out, "   {}", figures.join(" | ")).ok();
    }
    if let Some(n) = r.key_mappings {
        writeln!(out, "🔑 Key mappings: {n}").ok();
    }
    if !r.accounts.is_empty() {
        writeln!(out, "🏦 Accounts synced:").ok();
        for a in r.accounts.iter().take(ACCOUNTS_SHOWN) {
            writeln!(out, "   • {a}").ok();
        }
        if r.accounts.len() > ACCOUNTS_SHOWN {
            writeln!(out, "   {}", st.dim("... (and more)")).ok();
        }
    }
    if !r.skipped.is_empty() {
        writeln!(
            out,
            "{}",
            st.yellow(&format!("⚠️ Skipped keys: {}", r.skipped.len()))
        )
        .ok();
        for s in &r.skipped {
            if s.reason.is_empty() {
                writeln!(out, "   • {}", s.redis_key).ok();
            } else {
                writeln!(out, "   • {} ({})", s.redis_key, s.reason).ok();
            }
        }
    }
    match (&r.run_id, r.duration_ms) {
        (Some(id), Some(ms)) => writeln!(out, "🆔 Run: {id} ({ms} ms)").ok(),
        (Some(id), None) => writeln!(out, "🆔 Run: {id}").ok(),
        (None, Some(ms)) => writeln!(out, "⏱️ Duration: {ms} ms").ok(),
        (None, None) => None,
    };
    out
}

fn status_word(st: Style, s: &str) -> String {
    match s {
        "success" | "succeeded" | "ok" | "completed" | "done" => st.green(s),
        "failed" | "failure" | "error" => st.red(s),
        _ => st.yellow(s),
    }
}

/// The result of `GET /v1/status`.
pub fn status(s: &Status, st: Style) -> String {
    let mut out = String::new();
    writeln!(out, "📊 TOKEN STATUS:").ok();
    writeln!(out, "   Supabase tokens: {}", or_unknown(s.supabase_tokens)).ok();
    if let Some(n) = s.active_tokens {
        writeln!(out, "   Active tokens: {n}").ok();
    }
    writeln!(out, "   Redis tokens: {}", or_unknown(s.redis_tokens)).ok();
    let needed = match s.sync_needed {
        Some(true) => st.yellow("true"),
        Some(false) => "false".to_string(),
        None => "unknown".to_string(),
    };
    writeln!(out, "   Sync needed: {needed}").ok();
    match &s.expiring_soon {
        Some(ExpiringSoon::Count(0)) => writeln!(out, "   Expiring soon: 0").ok(),
        Some(ExpiringSoon::Count(n)) => {
            writeln!(out, "   Expiring soon: {}", st.yellow(&n.to_string())).ok()
        }
        Some(ExpiringSoon::Accounts(a)) if a.is_empty() => {
            writeln!(out, "   Expiring soon: 0").ok()
        }
        Some(ExpiringSoon::Accounts(a)) => writeln!(
            out,
            "   Expiring soon: {} ({})",
            st.yellow(&a.len().to_string()),
            a.join(", ")
        )
        .ok(),
        None => None,
    };
    writeln!(
        out,
        "   Last updated: {}",
        s.last_updated.as_deref().unwrap_or("never")
    )
    .ok();
    match &s.last_sync {
        Some(None) => {
            writeln!(out, "   Last sync: never").ok();
        }
        Some(Some(ls)) => {
            let mut line = status_word(st, ls.status.as_deref().unwrap_or("unknown"));
            if let Some(t) = &ls.trigger {
                write!(line, " via {t}").ok();
            }
            if let Some(at) = ls.finished_at.as_ref().or(ls.started_at.as_ref()) {
                write!(line, " at {at}").ok();
            }
            if let Some(n) = ls.tokens_synced {
                write!(line, " ({n} tokens)").ok();
            }
            writeln!(out, "   Last sync: {line}").ok();
            if let Some(e) = ls.error.as_deref().filter(|e| !e.is_empty()) {
                writeln!(out, "   {}", st.red(&format!("Last sync error: {e}"))).ok();
            }
        }
        None => {}
    }
    if let Some(recent) = &s.recent_tokens {
        writeln!(out).ok();
        writeln!(out, "🕐 Recent tokens:").ok();
        if recent.is_empty() {
            writeln!(out, "   {}", st.dim("(none)")).ok();
        }
        for t in recent {
            let expires = t.expires_at.as_deref().unwrap_or("unknown");
            let inactive = if t.is_active == Some(false) {
                format!(" {}", st.yellow("[inactive]"))
            } else {
                String::new()
            };
            writeln!(
                out,
                "   • {} (expires: {expires}){inactive}",
                t.account_name
            )
            .ok();
        }
    }
    out
}

/// The result of `GET /v1/tokens/{account}`. The token is shown: that is the point of `get`.
pub fn token(t: &TokenInfo, st: Style) -> String {
    let mut out = String::new();
    writeln!(out, "🔑 Token for {}:", t.account).ok();
    if let Some(m) = &t.main_account {
        writeln!(out, "   Main account: {m}").ok();
    }
    if let Some(ty) = &t.token_type {
        writeln!(out, "   Token type: {ty}").ok();
    }
    let mut expires = t.expires_at.clone().unwrap_or_else(|| "unknown".into());
    match (t.expired, t.expires_in_seconds) {
        (Some(true), Some(s)) => write!(
            expires,
            " {}",
            st.red(&format!("(expired {} ago)", format_seconds(-s.min(0))))
        )
        .ok(),
        (Some(true), None) => write!(expires, " {}", st.red("(expired)")).ok(),
        (_, Some(s)) if s < 0 => write!(
            expires,
            " {}",
            st.red(&format!("(expired {} ago)", format_seconds(-s)))
        )
        .ok(),
        (_, Some(s)) => write!(expires, " (in {})", format_seconds(s)).ok(),
        _ => None,
    };
    writeln!(out, "   Expires at: {expires}").ok();
    match &t.metadata {
        Some(serde_json::Value::Object(m)) if m.is_empty() => {}
        Some(m) => {
            writeln!(out, "   Metadata: {m}").ok();
        }
        None => {}
    }
    writeln!(out, "   Token: {}", t.token.as_deref().unwrap_or("(none)")).ok();
    out
}

/// The result of `GET /v1/tokens` as a table (metadata only; the API never sends tokens here).
pub fn list(l: &TokenList, st: Style) -> String {
    let mut out = String::new();
    writeln!(out, "📋 Tokens: {}", l.count).ok();
    if l.tokens.is_empty() {
        writeln!(out, "   {}", st.dim("(none)")).ok();
        return out;
    }
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 6]> = l
        .tokens
        .iter()
        .map(|t| {
            [
                t.account_name.clone(),
                dash(&t.main_account),
                dash(&t.token_type),
                match t.is_active {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
                dash(&t.expires_at),
                dash(&t.updated_at),
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
    let mut widths = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w - s.chars().count()));
    let line = |cells: Vec<String>| format!("   {}", cells.join("  ").trim_end());
    writeln!(
        out,
        "{}",
        st.bold(&line(
            head.iter().zip(widths).map(|(h, w)| pad(h, w)).collect()
        ))
    )
    .ok();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let padded = if i == r.len() - 1 {
                    c.clone()
                } else {
                    pad(c, w)
                };
                if i == 3 && c == "no" {
                    st.yellow(&padded)
                } else {
                    padded
                }
            })
            .collect();
        writeln!(out, "   {}", cells.join("  ")).ok();
    }
    out
}

/// The result of `POST /v1/cleanup`.
pub fn cleanup(c: &Cleanup, st: Style) -> String {
    let mut out = String::new();
    match (&c.message, c.success) {
        (Some(m), Some(false)) => writeln!(out, "{} {m}", st.red("❌ Cleanup failed:")),
        (None, Some(false)) => writeln!(out, "{}", st.red("❌ Cleanup failed")),
        (Some(m), _) => writeln!(out, "{} {m}", st.green("✅ Cleanup successful:")),
        (None, _) => writeln!(out, "{}", st.green("✅ Cleanup successful")),
    }
    .ok();
    if let Some(n) = c.cleaned {
        writeln!(out, "🧹 Tokens cleaned: {n}").ok();
    }
    out
}

/// The result of `GET /health`.
pub fn health(h: &Health, st: Style) -> String {
    let mut out = String::new();
    match h.status.as_deref() {
        Some("ok") => writeln!(out, "{} ok", st.green("✅ Worker healthy:")),
        Some(s) => writeln!(out, "{} {s}", st.red("❌ Worker unhealthy:")),
        None => writeln!(out, "{}", st.red("❌ Worker unhealthy: no status")),
    }
    .ok();
    for (k, v) in &h.details {
        writeln!(out, "   {k}: {v}").ok();
    }
    out
}

/// The line printed on stderr for a failed run. Never contains the API key (no error carries it).
pub fn error(e: &CliError, st: Style) -> String {
    format!("{} {}\n", st.red("❌"), st.red(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn obj(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
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
            header(Style::PLAIN),
            "🔄 SUPABASE TOKEN MANAGER\n\
             ============================================================\n"
        );
        assert_eq!(
            header(Style::COLOR),
            "\x1b[1m🔄 SUPABASE TOKEN MANAGER\x1b[0m\n\
             \x1b[2m============================================================\x1b[0m\n"
        );
    }

    #[test]
    fn sync_matches_the_seed_layout() {
        let r = SyncReport::from_json(&obj(seed_sync_json()));
        let text = format!(
            "{}{}{}",
            header(Style::PLAIN),
            sync_preamble(Style::PLAIN),
            sync(&r, Style::PLAIN)
        );
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
        let r = SyncReport::from_json(&obj(seed_sync_json()));
        let text = sync(&r, Style::COLOR);
        assert!(text.starts_with(
            "\x1b[32m✅ Sync successful:\x1b[0m Synced 22 tokens from Redis to Supabase\n"
        ));
        assert!(text.contains("   \x1b[2m... (and more)\x1b[0m\n"));
        assert!(text.contains("\x1b[33m⚠️ Skipped keys: 1\x1b[0m\n"));
        // Stripping the codes gives the plain text back.
        assert_eq!(strip_ansi(&text), sync(&r, Style::PLAIN));
    }

    #[test]
    fn and_more_only_past_five_accounts() {
        let five = SyncReport::from_json(&obj(json!({
            "success": true, "message": "Synced 5 tokens from Redis to Supabase",
            "tokens_synced": 5, "key_mappings": 5,
            "accounts": ["A1", "A2", "A3", "A4", "A5"]
        })));
        let text = sync(&five, Style::PLAIN);
        assert!(!text.contains("(and more)"), "{text}");
        assert!(text.contains("   • A5\n"));
        // The seed's own minimal answer: no new figures, nothing extra printed.
        assert_eq!(
            text,
            "\
✅ Sync successful: Synced 5 tokens from Redis to Supabase
📊 Tokens synced: 5
🔑 Key mappings: 5
🏦 Accounts synced:
   • A1
   • A2
   • A3
   • A4
   • A5
"
        );
        let six = SyncReport {
            accounts: (1..=6).map(|i| format!("A{i}")).collect(),
            ..five
        };
        let text = sync(&six, Style::PLAIN);
        assert!(text.ends_with("   • A5\n   ... (and more)\n"), "{text}");
        assert!(!text.contains("A6"));
    }

    #[test]
    fn sync_failure_and_empty_answer() {
        let r = SyncReport::from_json(&obj(
            json!({"success": false, "message": "Redis unreachable"}),
        ));
        assert_eq!(
            sync(&r, Style::PLAIN),
            "❌ Sync failed: Redis unreachable\n"
        );
        assert_eq!(
            sync(&SyncReport::default(), Style::PLAIN),
            "✅ Sync successful\n"
        );
    }

    fn seed_status_json() -> Value {
        json!({
            "supabase_tokens": 22,
            "active_tokens": 21,
            "redis_tokens": 22,
            "sync_needed": false,
            "last_updated": "2025-10-17T13:45:00.000Z",
            "last_sync": {
                "run_id": "7d0c", "trigger": "cron", "status": "success",
                "started_at": "2025-10-17T13:44:59.000Z",
                "finished_at": "2025-10-17T13:45:00.000Z",
                "tokens_synced": 22, "error": null
            },
            "expiring_soon": 2,
            "recent_tokens": [
                {"account_name": "APEX_136189", "main_account": "APEX_136189",
                 "expires_at": "2025-10-17T14:45:00", "is_active": true},
                {"account_name": "APEX_266668", "main_account": "APEX_266668",
                 "expires_at": "2025-10-17T14:45:00", "is_active": true},
                {"account_name": "APEX_272045", "main_account": "APEX_272045",
                 "expires_at": null, "is_active": false}
            ]
        })
    }

    #[test]
    fn status_matches_the_seed_layout() {
        let s = Status::from_json(&obj(seed_status_json()));
        assert_eq!(
            status(&s, Style::PLAIN),
            "\
📊 TOKEN STATUS:
   Supabase tokens: 22
   Active tokens: 21
   Redis tokens: 22
   Sync needed: false
   Expiring soon: 2
   Last updated: 2025-10-17T13:45:00.000Z
   Last sync: success via cron at 2025-10-17T13:45:00.000Z (22 tokens)

🕐 Recent tokens:
   • APEX_136189 (expires: 2025-10-17T14:45:00)
   • APEX_266668 (expires: 2025-10-17T14:45:00)
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
        let s = Status::from_json(&obj(v));
        let text = status(&s, Style::COLOR);
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

        let s = Status::from_json(&obj(json!({
            "supabase_tokens": 0, "redis_tokens": 0, "sync_needed": false,
            "last_updated": null, "last_sync": null, "recent_tokens": []
        })));
        assert_eq!(
            status(&s, Style::PLAIN),
            "\
📊 TOKEN STATUS:
   Supabase tokens: 0
   Redis tokens: 0
   Sync needed: false
   Last updated: never
   Last sync: never

🕐 Recent tokens:
   (none)
"
        );
        // Nothing at all: the seed's lines stay, saying they don't know.
        assert_eq!(
            status(&Status::default(), Style::PLAIN),
            "📊 TOKEN STATUS:\n   Supabase tokens: unknown\n   Redis tokens: unknown\n   \
             Sync needed: unknown\n   Last updated: never\n"
        );
    }

    #[test]
    fn token_shows_expiry_and_the_token() {
        let t = TokenInfo::from_json(&obj(json!({
            "account": "PAAPEX1361890000001",
            "main_account": "APEX_136189",
            "token": "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln",
            "token_type": "bearer",
            "expires_at": "2025-10-17T14:45:00Z",
            "expired": false,
            "expires_in_seconds": 3570,
            "metadata": {"redis_key": "token:PAAPEX1361890000001", "expires_source": "jwt_exp"}
        })));
        assert_eq!(
            token(&t, Style::PLAIN),
            "\
🔑 Token for PAAPEX1361890000001:
   Main account: APEX_136189
   Token type: bearer
   Expires at: 2025-10-17T14:45:00Z (in 59m 30s)
   Metadata: {\"expires_source\":\"jwt_exp\",\"redis_key\":\"token:PAAPEX1361890000001\"}
   Token: eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln
"
        );
        let t = TokenInfo::from_json(&obj(json!({
            "account": "X", "token": "t", "expires_at": null, "expires_in_seconds": null,
            "metadata": {}
        })));
        assert_eq!(
            token(&t, Style::PLAIN),
            "🔑 Token for X:\n   Expires at: unknown\n   Token: t\n"
        );
        let t = TokenInfo::from_json(&obj(json!({
            "account": "X", "token": "t", "expires_at": "T", "expired": true,
            "expires_in_seconds": -90
        })));
        assert!(token(&t, Style::COLOR).contains("T \x1b[31m(expired 1m 30s ago)\x1b[0m"));
    }

    #[test]
    fn list_is_an_aligned_table() {
        let l = TokenList::from_json(&obj(json!({
            "tokens": [
                {"account_name": "APEX_136189", "main_account": "APEX_136189",
                 "token_type": "bearer", "expires_at": "2025-10-17T14:45:00Z",
                 "is_active": true, "updated_at": "2025-10-17T13:45:00Z", "token_length": 900},
                {"account_name": "PAAPEX1361890000001", "main_account": "APEX_136189",
                 "token_type": "bearer", "expires_at": null,
                 "is_active": false, "updated_at": "2025-10-17T13:40:00Z"}
            ],
            "count": 2
        })));
        assert_eq!(
            list(&l, Style::PLAIN),
            "\
📋 Tokens: 2
   ACCOUNT              MAIN ACCOUNT  TYPE    ACTIVE  EXPIRES AT            UPDATED AT
   APEX_136189          APEX_136189   bearer  yes     2025-10-17T14:45:00Z  2025-10-17T13:45:00Z
   PAAPEX1361890000001  APEX_136189   bearer  no      -                     2025-10-17T13:40:00Z
"
        );
        let colored = list(&l, Style::COLOR);
        assert!(colored.contains("\x1b[33mno    \x1b[0m"), "{colored}");
        assert_eq!(strip_ansi(&colored), list(&l, Style::PLAIN));
        let empty = TokenList::from_json(&obj(json!({"tokens": [], "count": 0})));
        assert_eq!(list(&empty, Style::PLAIN), "📋 Tokens: 0\n   (none)\n");
    }

    #[test]
    fn cleanup_and_health() {
        let c = Cleanup::from_json(&obj(json!({
            "success": true, "cleaned": 3, "message": "Cleaned up 3 expired tokens"
        })));
        assert_eq!(
            cleanup(&c, Style::PLAIN),
            "✅ Cleanup successful: Cleaned up 3 expired tokens\n🧹 Tokens cleaned: 3\n"
        );
        assert_eq!(
            cleanup(&c, Style::COLOR),
            "\x1b[32m✅ Cleanup successful:\x1b[0m Cleaned up 3 expired tokens\n🧹 Tokens cleaned: 3\n"
        );
        let h = Health::from_json(&obj(
            json!({"status": "ok", "version": "0.1.0", "nested": {}}),
        ));
        assert_eq!(
            health(&h, Style::PLAIN),
            "✅ Worker healthy: ok\n   version: 0.1.0\n"
        );
        let h = Health::from_json(&obj(json!({"status": "degraded"})));
        assert_eq!(health(&h, Style::PLAIN), "❌ Worker unhealthy: degraded\n");
    }

    #[test]
    fn colour_detection() {
        assert!(Style::detect(true, false, None).color);
        assert!(!Style::detect(false, false, None).color);
        assert!(!Style::detect(true, true, None).color);
        assert!(!Style::detect(true, false, Some("1")).color);
        assert!(Style::detect(true, false, Some("")).color);
    }

    #[test]
    fn error_line() {
        let e = CliError::Api(crate::error::ApiError::from_response(
            404,
            br#"{"error":{"code":"not_found","message":"No token for account NOPE"}}"#.to_vec(),
        ));
        assert_eq!(
            error(&e, Style::PLAIN),
            "❌ API error 404 (not_found): No token for account NOPE\n"
        );
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
