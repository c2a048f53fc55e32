//! `cargo xtask config-check`: the Worker's configuration rules, asked of the Worker's code.
//!
//! [`Config::from_lookup`] stops at the first bad setting. To name every one, the check
//! runs it again with that setting replaced by a stand-in known to pass (or removed, for an
//! optional one), until it passes; each replaced setting is one problem. Settings the Worker
//! keeps on Cloudflare (`--kept`) get a stand-in from the start. Stand-ins never leave this
//! process and no value is ever printed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;
use token_manager::config::{Config, ConfigError};

/// The parts of wrangler.toml the deployed Worker's settings come from.
#[derive(Debug, Default, Deserialize)]
pub struct WranglerToml {
    /// `[vars]`: non-secret settings.
    #[serde(default)]
    pub vars: BTreeMap<String, toml::Value>,
    /// `[triggers]`: the cron expressions.
    #[serde(default)]
    pub triggers: Triggers,
}

/// `[triggers]`.
#[derive(Debug, Default, Deserialize)]
pub struct Triggers {
    /// `crons = [...]`.
    #[serde(default)]
    pub crons: Vec<String>,
}

/// One finding about the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A required setting is not set.
    Missing { name: String, message: String },
    /// A setting is set but refused.
    Invalid { name: String, message: String },
}

impl Finding {
    fn line(&self) -> String {
        match self {
            Finding::Missing { name, message } => format!("missing\t{name}\t{message}"),
            Finding::Invalid { name, message } => format!("invalid\t{name}\t{message}"),
        }
    }
}

/// What the check found: problems, and which job each cron trigger runs.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// `(expression, "sync" | "cleanup" | "none")` per trigger, in wrangler.toml's order.
    pub crons: Vec<(String, &'static str)>,
}

/// A value that passes the Worker's checks for a required setting, standing in for a setting
/// that is wrong, missing or kept on Cloudflare so that the other settings can be checked.
fn stand_in(name: &str) -> Option<String> {
    Some(
        match name {
            "SUPABASE_URL" => "https://config-check.supabase.co",
            "SUPABASE_REST_URL" => "https://config-check.supabase.co/rest/v1",
            "UPSTASH_REDIS_REST_URL" => "https://config-check.upstash.io",
            "SUPABASE_SERVICE_ROLE_KEY" => "config-check-stand-in-service-role-key-000000",
            "UPSTASH_REDIS_REST_TOKEN" => "config-check-stand-in-upstash-token-0000000000",
            "TOKEN_MANAGER_ADMIN_KEY" => "config-check-stand-in-admin-key-00000000000000",
            // base64 of 32 bytes 0xfb (not printable text, which the Worker refuses off loopback)
            "TOKEN_ENCRYPTION_KEY" => "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=",
            _ => return None,
        }
        .to_string(),
    )
}

fn setting(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::Missing { name } | ConfigError::Invalid { name, .. } => name,
    }
}

/// Checks the settings `lookup` gives, with `kept` standing in for secrets the Worker has.
pub fn check(lookup: &dyn Fn(&str) -> Option<String>, kept: &[String], crons: &[String]) -> Report {
    // A stand-in value, or `None` for "unset", per replaced setting.
    let mut replaced: HashMap<String, Option<String>> = kept
        .iter()
        .map(|name| (name.clone(), stand_in(name)))
        .collect();
    let mut report = Report::default();
    let config = loop {
        let result = Config::from_lookup(|name| match replaced.get(name) {
            Some(value) => value.clone(),
            None => lookup(name),
        });
        let e = match result {
            Ok(config) => break Some(config),
            Err(e) => e,
        };
        let name = setting(&e);
        if replaced.contains_key(name) {
            // Even a stand-in is refused: a rule this check does not know; stop here.
            report.findings.push(Finding::Invalid {
                name: name.into(),
                message: format!("{e} (the other settings could not be checked past it)"),
            });
            break None;
        }
        report.findings.push(match e {
            ConfigError::Missing { .. } => Finding::Missing {
                name: name.into(),
                message: e.to_string(),
            },
            _ => Finding::Invalid {
                name: name.into(),
                message: e.to_string(),
            },
        });
        replaced.insert(name.to_string(), stand_in(name));
    };
    let Some(config) = config else {
        return report;
    };
    for (name, expression, job) in [
        ("SYNC_CRON", &config.sync_cron, "sync"),
        ("CLEANUP_CRON", &config.cleanup_cron, "cleanup"),
        ("RENEW_CRON", &config.renew_cron, "renew"),
    ] {
        if !crons.contains(expression) {
            report.findings.push(Finding::Invalid {
                name: name.into(),
                message: format!(
                    "the {job} cron {expression:?} ({name}) is not in wrangler.toml [triggers] crons: \
                     scheduled runs would only log that they match nothing"
                ),
            });
        }
    }
    if crons.is_empty() {
        report.findings.push(Finding::Invalid {
            name: "crons".into(),
            message: "wrangler.toml has no [triggers] crons: sync and cleanup would never run on schedule".into(),
        });
    }
    report.crons = crons
        .iter()
        .map(|c| {
            let job = if *c == config.sync_cron {
                "sync"
            } else if *c == config.cleanup_cron {
                "cleanup"
            } else if *c == config.renew_cron {
                "renew"
            } else {
                "none"
            };
            (c.clone(), job)
        })
        .collect();
    report
}

/// Settings that hold a secret and must not be in wrangler.toml `[vars]` (committed, and shown
/// in the dashboard): a Slack or Discord webhook URL carries its secret in the path.
const SECRET_SETTINGS: &[&str] = &["ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET"];

/// One finding per secret setting found in `[vars]`; its value is never printed.
pub fn secrets_in_vars(vars: &BTreeMap<String, toml::Value>) -> Vec<Finding> {
    SECRET_SETTINGS
        .iter()
        .filter(|name| vars.contains_key(**name))
        .map(|name| Finding::Invalid {
            name: name.to_string(),
            message: format!(
                "{name} holds a secret: remove it from wrangler.toml [vars] and set it with `wrangler secret put {name}`"
            ),
        })
        .collect()
}

/// Reads wrangler.toml, checks the settings it and the environment give, prints the report.
pub fn run(wrangler_toml: &Path, kept: &[String], allow_missing: bool) -> ExitCode {
    let toml: WranglerToml = match std::fs::read_to_string(wrangler_toml)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(toml) => toml,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", wrangler_toml.display());
            return ExitCode::from(2);
        }
    };
    // The deployed Worker reads [vars] (Cloudflare refuses a secret of the same name), then
    // its secrets: here, the environment.
    let vars: HashMap<String, String> = toml
        .vars
        .iter()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect();
    let lookup = |name: &str| vars.get(name).cloned().or_else(|| std::env::var(name).ok());
    let mut report = check(&lookup, kept, &toml.triggers.crons);
    report.findings.extend(secrets_in_vars(&toml.vars));
    for f in &report.findings {
        println!("{}", f.line());
    }
    for (expression, job) in &report.crons {
        println!("cron\t{expression}\t{job}");
    }
    let problems = report
        .findings
        .iter()
        .filter(|f| !(allow_missing && matches!(f, Finding::Missing { .. })))
        .count();
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRONS: &[&str] = &["*/30 * * * *", "0 2 * * *", "*/5 * * * *"];

    fn crons() -> Vec<String> {
        CRONS.iter().map(|c| c.to_string()).collect()
    }

    fn good() -> HashMap<&'static str, String> {
        [
            "SUPABASE_URL",
            "UPSTASH_REDIS_REST_URL",
            "SUPABASE_SERVICE_ROLE_KEY",
            "UPSTASH_REDIS_REST_TOKEN",
            "TOKEN_MANAGER_ADMIN_KEY",
            "TOKEN_ENCRYPTION_KEY",
        ]
        .into_iter()
        .map(|n| (n, stand_in(n).unwrap().replace("stand-in", "real-value")))
        .collect()
    }

    fn run_with(settings: &HashMap<&'static str, String>, kept: &[&str]) -> Report {
        let lookup = |name: &str| settings.get(name).cloned();
        let kept: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
        check(&lookup, &kept, &crons())
    }

    #[test]
    fn every_stand_in_passes_the_workers_own_checks() {
        let report = run_with(&good(), &[]);
        assert_eq!(report.findings, Vec::new());
        assert_eq!(
            report.crons,
            vec![
                ("*/30 * * * *".to_string(), "sync"),
                ("0 2 * * *".to_string(), "cleanup"),
                ("*/5 * * * *".to_string(), "renew")
            ]
        );
    }

    #[test]
    fn every_bad_setting_is_named_not_only_the_first() {
        let mut settings = good();
        settings.insert("UPSTASH_REDIS_REST_URL", "not-a-url-secret-value".into());
        settings.insert("TOKEN_MANAGER_ADMIN_KEY", "short".into());
        settings.insert("TOKEN_ENCRYPTION_KEY", "bm90IDMyIGJ5dGVz".into());
        settings.remove("SUPABASE_SERVICE_ROLE_KEY");
        settings.insert("SYNC_BATCH_SIZE", "0".into());
        settings.insert(
            "ALERT_WEBHOOK_URL",
            "http://hooks.example.com/secret-value".into(),
        );
        settings.insert("ALERT_FORMAT", "teams".into());
        let report = run_with(&settings, &[]);
        let mut named: Vec<(&str, bool)> = report
            .findings
            .iter()
            .map(|f| match f {
                Finding::Missing { name, .. } => (name.as_str(), true),
                Finding::Invalid { name, .. } => (name.as_str(), false),
            })
            .collect();
        named.sort();
        assert_eq!(
            named,
            vec![
                ("ALERT_FORMAT", false),
                ("ALERT_WEBHOOK_URL", false),
                ("SUPABASE_SERVICE_ROLE_KEY", true),
                ("SYNC_BATCH_SIZE", false),
                ("TOKEN_ENCRYPTION_KEY", false),
                ("TOKEN_MANAGER_ADMIN_KEY", false),
                ("UPSTASH_REDIS_REST_URL", false),
            ]
        );
        for f in &report.findings {
            let line = f.line();
            assert!(
                !line.contains("secret-value") && !line.contains("bm90IDMyIGJ5dGVz"),
                "{line}"
            );
        }
    }

    #[test]
    fn kept_secrets_are_not_required_here() {
        let mut settings = good();
        settings.remove("SUPABASE_SERVICE_ROLE_KEY");
        settings.remove("TOKEN_ENCRYPTION_KEY");
        let report = run_with(
            &settings,
            &["SUPABASE_SERVICE_ROLE_KEY", "TOKEN_ENCRYPTION_KEY"],
        );
        assert_eq!(report.findings, Vec::new());
    }

    #[test]
    fn a_cron_setting_without_its_trigger_is_a_problem() {
        let mut settings = good();
        settings.insert("SYNC_CRON", "*/15 * * * *".into());
        let report = run_with(&settings, &[]);
        assert!(matches!(
            &report.findings[..],
            [Finding::Invalid { name, .. }] if name == "SYNC_CRON"
        ));
        assert_eq!(report.crons[0].1, "none");
    }

    #[test]
    fn a_webhook_url_in_vars_is_a_problem_without_its_value() {
        let toml: WranglerToml = toml::from_str(
            "[vars]\nALERT_WEBHOOK_URL = \"https://hooks.slack.com/services/T/B/secret-value\"\nALERT_FORMAT = \"slack\"\n",
        )
        .unwrap();
        let findings = secrets_in_vars(&toml.vars);
        assert!(
            matches!(&findings[..], [Finding::Invalid { name, .. }] if name == "ALERT_WEBHOOK_URL")
        );
        assert!(!findings[0].line().contains("secret-value"));
    }

    #[test]
    fn reads_the_repositorys_wrangler_toml() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wrangler.toml");
        let toml: WranglerToml = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(!toml.triggers.crons.is_empty());
        assert!(toml.vars.contains_key("TOKEN_KEY_PATTERNS"));
        assert_eq!(secrets_in_vars(&toml.vars), Vec::new());
    }
}
