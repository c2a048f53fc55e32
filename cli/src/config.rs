//! Where tokenctl finds the Worker's URL and its API key.
//!
//! Precedence, highest first: command-line flag (`--url`, `--api-key`), process environment
//! (`TOKEN_MANAGER_URL`, `TOKEN_MANAGER_API_KEY`), then a `.env` file in the current directory
//! (the seed's habit). Empty values count as unset. The `.env` file is read, never loaded into
//! the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::Url;

/// Environment variable holding the Worker's base URL.
pub const URL_VAR: &str = "TOKEN_MANAGER_URL";
/// Environment variable holding the API key (read key or admin key).
pub const API_KEY_VAR: &str = "TOKEN_MANAGER_API_KEY";

/// An API key. It is never displayed: `Debug` is redacted and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; `None` when the value is empty or only whitespace.
    pub fn new(value: &str) -> Option<Self> {
        let v = value.trim();
        (!v.is_empty()).then(|| ApiKey(v.to_string()))
    }

    /// The secret itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Where a setting's value came from (shown in error messages, never with the value of a key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag,
    /// The process environment.
    Env,
    /// The `.env` file in the current directory.
    DotEnv,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Flag => "the command line",
            Source::Env => "the environment",
            Source::DotEnv => "./.env",
        })
    }
}

/// What the command line said about configuration.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--url`
    pub url: Option<String>,
    /// `--api-key`
    pub api_key: Option<String>,
}

/// Configuration that could not be used; every variant says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// No URL from any source.
    MissingUrl,
    /// No API key, and the command needs one.
    MissingApiKey {
        /// The subcommand that needs it.
        command: &'static str,
    },
    /// The URL does not parse or is not http(s).
    InvalidUrl {
        /// The offending value (URLs are not secrets).
        value: String,
        /// Where it came from.
        source: Source,
        /// What is wrong with it.
        reason: String,
    },
    /// `.env` exists but cannot be read or parsed.
    DotEnv {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingUrl => write!(
                f,
                "{URL_VAR} is not set: pass --url https://your-worker.example.workers.dev, \
                 or set {URL_VAR} in the environment or in ./.env"
            ),
            ConfigError::MissingApiKey { command } => write!(
                f,
                "{API_KEY_VAR} is not set and `{command}` needs an API key: pass --api-key, \
                 or set {API_KEY_VAR} in the environment or in ./.env \
                 (sync and cleanup need the admin key; status, get and list accept the read key)"
            ),
            ConfigError::InvalidUrl {
                value,
                source,
                reason,
            } => write!(
                f,
                "{URL_VAR} from {source} is not a usable URL ({value:?}): {reason}; \
                 expected something like https://your-worker.example.workers.dev"
            ),
            ConfigError::DotEnv { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Resolved configuration, ready for the HTTP client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Worker's base URL (may carry a path prefix; routes are appended to it).
    pub base_url: Url,
    /// The API key, when one was found.
    pub api_key: Option<ApiKey>,
}

/// Reads `KEY=value` pairs from a `.env` file. A missing file is an empty map, not an error.
pub fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let err = |reason: String| ConfigError::DotEnv {
        path: path.to_path_buf(),
        reason,
    };
    let iter = dotenvy::from_path_iter(path).map_err(|e| err(e.to_string()))?;
    let mut map = HashMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| err(e.to_string()))?;
        map.insert(k, v);
    }
    Ok(map)
}

fn pick(
    flag: Option<&str>,
    var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    dotenv: &HashMap<String, String>,
) -> Option<(String, Source)> {
    let nonempty = |v: &str| !v.trim().is_empty();
    if let Some(v) = flag.filter(|v| nonempty(v)) {
        return Some((v.trim().to_string(), Source::Flag));
    }
    if let Some(v) = env(var).filter(|v| nonempty(v)) {
        return Some((v.trim().to_string(), Source::Env));
    }
    dotenv
        .get(var)
        .filter(|v| nonempty(v))
        .map(|v| (v.trim().to_string(), Source::DotEnv))
}

/// Parses and checks a base URL: http or https, with a host.
pub fn parse_base_url(value: &str, source: Source) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        value: value.to_string(),
        source,
        reason: reason.to_string(),
    };
    let url = Url::parse(value).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) || url.cannot_be_a_base() {
        return Err(invalid("there is no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials do not belong in the URL; use --api-key or TOKEN_MANAGER_API_KEY",
        ));
    }
    Ok(url)
}

/// Resolves the settings for one command. `env` looks up process environment variables;
/// `dotenv` is the content of `./.env`. `key_needed_by` names the command when it requires
/// an API key (everything but `health`).
pub fn resolve(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    dotenv: &HashMap<String, String>,
    key_needed_by: Option<&'static str>,
) -> Result<Settings, ConfigError> {
    let (url, source) =
        pick(overrides.url.as_deref(), URL_VAR, env, dotenv).ok_or(ConfigError::MissingUrl)?;
    let base_url = parse_base_url(&url, source)?;
    let api_key = pick(overrides.api_key.as_deref(), API_KEY_VAR, env, dotenv)
        .and_then(|(k, _)| ApiKey::new(&k));
    if let (None, Some(command)) = (&api_key, key_needed_by) {
        return Err(ConfigError::MissingApiKey { command });
    }
    Ok(Settings { base_url, api_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn dotenv_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const FILE: &[(&str, &str)] = &[
        (URL_VAR, "http://dotenv.example:1"),
        (API_KEY_VAR, "dotenv-key"),
    ];
    const ENV: &[(&str, &str)] = &[(URL_VAR, "http://env.example:2"), (API_KEY_VAR, "env-key")];

    #[test]
    fn flag_beats_env_beats_dotenv() {
        let flags = Overrides {
            url: Some("http://flag.example:3".into()),
            api_key: Some("flag-key".into()),
        };
        let s = resolve(&flags, &env_of(ENV), &dotenv_of(FILE), Some("status")).unwrap();
        assert_eq!(s.base_url.as_str(), "http://flag.example:3/");
        assert_eq!(s.api_key.unwrap().expose(), "flag-key");

        let s = resolve(
            &Overrides::default(),
            &env_of(ENV),
            &dotenv_of(FILE),
            Some("status"),
        )
        .unwrap();
        assert_eq!(s.base_url.as_str(), "http://env.example:2/");
        assert_eq!(s.api_key.unwrap().expose(), "env-key");

        let s = resolve(
            &Overrides::default(),
            &env_of(&[]),
            &dotenv_of(FILE),
            Some("status"),
        )
        .unwrap();
        assert_eq!(s.base_url.as_str(), "http://dotenv.example:1/");
        assert_eq!(s.api_key.unwrap().expose(), "dotenv-key");
    }

    #[test]
    fn each_setting_resolves_on_its_own() {
        // URL from the flag, key from .env.
        let flags = Overrides {
            url: Some("https://flag.example".into()),
            api_key: None,
        };
        let s = resolve(
            &flags,
            &env_of(&[]),
            &dotenv_of(&[(API_KEY_VAR, "k")]),
            Some("get"),
        )
        .unwrap();
        assert_eq!(s.base_url.host_str(), Some("flag.example"));
        assert_eq!(s.api_key.unwrap().expose(), "k");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let flags = Overrides {
            url: Some("".into()),
            api_key: Some("  ".into()),
        };
        let s = resolve(
            &flags,
            &env_of(&[(URL_VAR, ""), (API_KEY_VAR, "env-key")]),
            &dotenv_of(FILE),
            Some("status"),
        )
        .unwrap();
        assert_eq!(s.base_url.as_str(), "http://dotenv.example:1/");
        assert_eq!(s.api_key.unwrap().expose(), "env-key");
    }

    #[test]
    fn missing_settings_are_named() {
        let err = resolve(
            &Overrides::default(),
            &env_of(&[]),
            &HashMap::new(),
            Some("sync"),
        )
        .unwrap_err();
        assert_eq!(err, ConfigError::MissingUrl);
        assert!(err.to_string().contains("TOKEN_MANAGER_URL"));
        assert!(err.to_string().contains("--url"));

        let err = resolve(
            &Overrides::default(),
            &env_of(&[(URL_VAR, "http://127.0.0.1:8787")]),
            &HashMap::new(),
            Some("sync"),
        )
        .unwrap_err();
        assert_eq!(err, ConfigError::MissingApiKey { command: "sync" });
        let msg = err.to_string();
        assert!(msg.contains("TOKEN_MANAGER_API_KEY") && msg.contains("`sync`"));
    }

    #[test]
    fn health_needs_no_key() {
        let s = resolve(
            &Overrides::default(),
            &env_of(&[(URL_VAR, "http://127.0.0.1:8787")]),
            &HashMap::new(),
            None,
        )
        .unwrap();
        assert!(s.api_key.is_none());
    }

    #[test]
    fn bad_urls_are_refused_with_their_source() {
        for bad in ["not a url", "ftp://x.example", "mailto:a@b.example"] {
            let err = resolve(
                &Overrides::default(),
                &env_of(&[(URL_VAR, bad), (API_KEY_VAR, "k")]),
                &HashMap::new(),
                Some("status"),
            )
            .unwrap_err();
            match &err {
                ConfigError::InvalidUrl { source, .. } => assert_eq!(*source, Source::Env),
                other => panic!("{bad}: {other:?}"),
            }
            assert!(err.to_string().contains("the environment"));
        }
        let err = parse_base_url("https://user:secret@x.example", Source::Flag).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidUrl { .. }));
    }

    #[test]
    fn api_key_never_shows_in_debug() {
        let s = resolve(
            &Overrides {
                url: Some("http://x.example".into()),
                api_key: Some("super-secret-value".into()),
            },
            &env_of(&[]),
            &HashMap::new(),
            Some("status"),
        )
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("super-secret-value"), "{dbg}");
        assert!(dbg.contains("***"));
    }

    #[test]
    fn reads_a_dotenv_file() {
        let dir = std::env::temp_dir().join(format!("tokenctl-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".env");
        std::fs::write(
            &path,
            "# comment\nTOKEN_MANAGER_URL=http://file.example:9\nTOKEN_MANAGER_API_KEY=\"quoted key\"\n",
        )
        .unwrap();
        let map = read_dotenv(&path).unwrap();
        assert_eq!(map[URL_VAR], "http://file.example:9");
        assert_eq!(map[API_KEY_VAR], "quoted key");
        assert!(read_dotenv(&dir.join("absent")).unwrap().is_empty());
        std::fs::write(&path, "THIS IS NOT = valid 'dotenv\n").unwrap();
        assert!(matches!(
            read_dotenv(&path),
            Err(ConfigError::DotEnv { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
