//! `cargo xtask lockfile-check`: the supply-chain rules of Cargo.lock, checked offline.
//!
//! `cargo audit`/`cargo deny check advisories` need RustSec's advisory database, which lives
//! on GitHub (unreachable here, and no registry package ships it); these rules keep out what
//! the last audit found and keep one HTTP stack, as cargo-deny's `bans` and `sources` would.

use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;

const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// Crates that must appear in one version only, and the oldest version allowed.
const SINGLE: &[(&str, (u64, u64))] = &[
    ("reqwest", (0, 12)),
    ("rustls", (0, 23)),
    ("hyper", (1, 0)),
    ("http", (1, 0)),
];

/// Versions with advisories (RUSTSEC-2026-0098, -0099, -0104: rustls-webpki 0.101;
/// RUSTSEC-2026-0258: h2 0.3), refused below the given version.
const AT_LEAST: &[(&str, (u64, u64))] = &[("rustls-webpki", (0, 103)), ("h2", (0, 4))];

/// Cargo.lock's `[[package]]` entries.
#[derive(Debug, Deserialize)]
pub struct Lockfile {
    #[serde(default)]
    pub package: Vec<Package>,
}

/// One locked package.
#[derive(Debug, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// `None` for the workspace's own and path packages.
    pub source: Option<String>,
}

fn major_minor(version: &str) -> (u64, u64) {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Every rule the lockfile breaks, one message each.
pub fn problems(lock: &Lockfile) -> Vec<String> {
    let mut out = Vec::new();
    let versions = |name: &str| -> Vec<&str> {
        lock.package
            .iter()
            .filter(|p| p.name == name)
            .map(|p| p.version.as_str())
            .collect()
    };
    for (name, oldest) in SINGLE {
        let v = versions(name);
        if v.len() > 1 {
            out.push(format!(
                "{name} is locked in {} versions ({}): keep one",
                v.len(),
                v.join(", ")
            ));
        }
        for version in v.iter().filter(|v| major_minor(v) < *oldest) {
            out.push(format!(
                "{name} {version} is older than {}.{}",
                oldest.0, oldest.1
            ));
        }
    }
    for (name, oldest) in AT_LEAST {
        for version in versions(name).iter().filter(|v| major_minor(v) < *oldest) {
            out.push(format!(
                "{name} {version} has known advisories: it must be {}.{} or newer",
                oldest.0, oldest.1
            ));
        }
    }
    for p in &lock.package {
        if let Some(source) = p.source.as_deref().filter(|s| *s != CRATES_IO) {
            out.push(format!(
                "{} {} comes from {source}, not crates.io",
                p.name, p.version
            ));
        }
    }
    out
}

/// Reads the lockfile and prints what it breaks; exit 1 if anything.
pub fn run(path: &Path) -> ExitCode {
    let lock: Lockfile = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let problems = problems(&lock);
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!(
            "{}: {} packages, no problem",
            path.display(),
            lock.package.len()
        );
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(text: &str) -> Lockfile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_repositorys_lockfile_keeps_the_rules() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
        let lock: Lockfile = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(lock.package.iter().any(|p| p.name == "reqwest"));
        assert_eq!(problems(&lock), Vec::<String>::new());
    }

    #[test]
    fn what_the_last_audit_found_is_refused() {
        let old = lock(&format!(
            r#"
[[package]]
name = "reqwest"
version = "0.11.27"
source = "{CRATES_IO}"

[[package]]
name = "reqwest"
version = "0.12.28"
source = "{CRATES_IO}"

[[package]]
name = "rustls-webpki"
version = "0.101.7"
source = "{CRATES_IO}"

[[package]]
name = "h2"
version = "0.3.27"
source = "{CRATES_IO}"

[[package]]
name = "evil"
version = "1.0.0"
source = "git+https://example.com/evil"

[[package]]
name = "token-manager"
version = "0.1.0"
"#
        ));
        let found = problems(&old);
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(found[0].contains("reqwest is locked in 2 versions"));
        assert!(found.iter().any(|p| p.starts_with("rustls-webpki 0.101.7")));
        assert!(found.iter().any(|p| p.starts_with("h2 0.3.27")));
        assert!(found.iter().any(|p| p.contains("not crates.io")));
    }
}
