//! Where tokenctl finds the Worker's URL and its API key, and what it refuses.
//!
//! Precedence, highest first: the command line (`--url`; `--api-key-file FILE`, `-` for
//! stdin, or `--api-key`), the process environment (`TOKEN_MANAGER_URL`,
//! `TOKEN_MANAGER_API_KEY`), then a `.env` file in the current directory (the seed's habit).
//! Empty values count as unset. The `.env` file is read, never loaded into the environment.
//!
//! Guarantees: a URL that only `./.env` gives is never sent a key that came from elsewhere (a
//! `.env` in whatever directory you stand in cannot redirect your key); `http://` is refused
//! for hosts other than this machine unless `--insecure`; a key on the command line, or in a
//! file other users can read, draws a [`Warning`]. The key is never displayed.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
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

/// Where a setting's value came from (shown in messages, never with the value of a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--url` or `--api-key`.
    Flag,
    /// `--api-key-file FILE`.
    KeyFile(PathBuf),
    /// `--api-key-file -`.
    Stdin,
    /// The process environment.
    Env,
    /// The `.env` file in the current directory.
    DotEnv,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("the command line"),
            Source::KeyFile(path) => write!(f, "{}", path.display()),
            Source::Stdin => f.write_str("standard input"),
            Source::Env => f.write_str("the environment"),
            Source::DotEnv => f.write_str("./.env"),
        }
    }
}

/// What the command line said about configuration.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--url`
    pub url: Option<String>,
    /// `--api-key` (discouraged: it shows in `ps` and in shell history).
    pub api_key: Option<String>,
    /// `--api-key-file`; `-` is standard input.
    pub api_key_file: Option<PathBuf>,
    /// `--insecure`: allow `http://` to a host that is not this machine.
    pub insecure: bool,
}

/// A `.env` file as read: its pairs and whether other users may read it.
#[derive(Debug, Clone, Default)]
pub struct DotEnv {
    /// `KEY=value` pairs (empty when there is no file).
    pub values: HashMap<String, String>,
    /// The file's permission bits when group or others may read it (Unix), else `None`.
    pub readable_by_others: Option<u32>,
}

/// Something worth saying on stderr that does not stop the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    /// `--api-key VALUE`.
    #[error(
        "--api-key puts the key in the process list and your shell history; use \
         --api-key-file FILE, --api-key-file - (standard input) or {API_KEY_VAR} instead"
    )]
    KeyOnCommandLine,
    /// The file the key came from is readable by other users.
    #[error(
        "{} holds the API key and other users can read it (mode {mode:03o}): chmod 600 {}",
        .origin, file_arg(.origin)
    )]
    KeyFileReadable {
        /// `./.env` or the `--api-key-file`.
        origin: Source,
        /// Its permission bits.
        mode: u32,
    },
}

fn file_arg(source: &Source) -> String {
    match source {
        Source::KeyFile(path) => path.display().to_string(),
        _ => ".env".into(),
    }
}

/// Configuration that could not be used; every variant says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No URL from any source.
    #[error(
        "{URL_VAR} is not set: pass --url https://your-worker.example.workers.dev, \
         or set {URL_VAR} in the environment or in ./.env"
    )]
    MissingUrl,
    /// No API key, and the command needs one.
    #[error(
        "{API_KEY_VAR} is not set and `{command}` needs an API key: pass --api-key-file FILE \
         (or - for standard input), or set {API_KEY_VAR} in the environment or in ./.env \
         (sync and cleanup need the admin key; status, get and list accept the read key)"
    )]
    MissingApiKey {
        /// The subcommand that needs it.
        command: &'static str,
    },
    /// The URL does not parse or is not http(s).
    #[error(
        "{URL_VAR} from {origin} is not a usable URL ({value:?}): {reason}; \
         expected something like https://your-worker.example.workers.dev"
    )]
    InvalidUrl {
        /// The offending value (URLs are not secrets).
        value: String,
        /// Where it came from.
        origin: Source,
        /// What is wrong with it.
        reason: String,
    },
    /// `http://` to a host that is not this machine, without `--insecure`.
    #[error(
        "{URL_VAR} from {origin} is http:// to {host}, which is not this machine: the API key \
         and the tokens would cross the network unencrypted. Use https://, or pass --insecure \
         if you mean it"
    )]
    InsecureUrl {
        /// The host.
        host: String,
        /// Where the URL came from.
        origin: Source,
    },
    /// The URL comes only from `./.env` while the key comes from elsewhere.
    #[error(
        "{URL_VAR} comes only from ./.env but the API key from {key_source}: a .env file in \
         the current directory may not send that key somewhere else. Pass --url, or set \
         {URL_VAR} in the environment (or put both in ./.env and unset the other key)"
    )]
    UrlFromDotEnvOnly {
        /// Where the key came from.
        key_source: Source,
    },
    /// `--api-key-file` cannot be read or holds no key.
    #[error("cannot read the API key from {origin}: {reason}")]
    KeyFile {
        /// The file, or standard input.
        origin: Source,
        /// What went wrong.
        reason: String,
    },
    /// `.env` exists but cannot be read or parsed.
    #[error("cannot read {}: {reason}", .path.display())]
    DotEnv {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
}

/// Resolved configuration, ready for the HTTP client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Worker's base URL (may carry a path prefix; routes are appended to it).
    pub base_url: Url,
    /// The API key, when the command needs one.
    pub api_key: Option<ApiKey>,
    /// What to warn about on stderr.
    pub warnings: Vec<Warning>,
}

/// What resolving may read besides the command line: the environment, `./.env`, the files
/// and standard input a key may come from. Tests supply their own.
pub struct Surroundings<'a> {
    /// Looks up a process environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `./.env`, already read.
    pub dotenv: &'a DotEnv,
    /// Reads all of standard input.
    pub stdin: &'a dyn Fn() -> std::io::Result<String>,
}

/// Reads `KEY=value` pairs from a `.env` file. A missing file is an empty [`DotEnv`].
pub fn read_dotenv(path: &Path) -> Result<DotEnv, ConfigError> {
    if !path.exists() {
        return Ok(DotEnv::default());
    }
    let err = |reason: String| ConfigError::DotEnv {
        path: path.to_path_buf(),
        reason,
    };
    let iter = dotenvy::from_path_iter(path).map_err(|e| err(e.to_string()))?;
    let mut values = HashMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| err(e.to_string()))?;
        values.insert(k, v);
    }
    Ok(DotEnv {
        values,
        readable_by_others: readable_by_others(path),
    })
}

/// The permission bits of `path` when its group or other users may read it (Unix only).
pub fn readable_by_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

fn nonempty(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

fn pick(flag: Option<&str>, var: &str, around: &Surroundings<'_>) -> Option<(String, Source)> {
    flag.and_then(nonempty)
        .map(|v| (v, Source::Flag))
        .or_else(|| {
            (around.env)(var)
                .as_deref()
                .and_then(nonempty)
                .map(|v| (v, Source::Env))
        })
        .or_else(|| {
            around
                .dotenv
                .values
                .get(var)
                .and_then(|v| nonempty(v))
                .map(|v| (v, Source::DotEnv))
        })
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or ::1.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => Ipv4Addr::is_loopback(&ip),
        Some(url::Host::Ipv6(ip)) => Ipv6Addr::is_loopback(&ip),
        None => false,
    }
}

/// Parses and checks a base URL: http or https, with a host, no credentials; `http://` only
/// to this machine unless `insecure`.
pub fn parse_base_url(value: &str, origin: Source, insecure: bool) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidUrl {
        value: value.to_string(),
        origin: origin.clone(),
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
            "credentials do not belong in the URL; use --api-key-file or TOKEN_MANAGER_API_KEY",
        ));
    }
    if url.scheme() == "http" && !insecure && !is_loopback(&url) {
        return Err(ConfigError::InsecureUrl {
            host: url.host_str().unwrap_or_default().to_string(),
            origin,
        });
    }
    Ok(url)
}

/// The key from the command line (`--api-key-file` or `--api-key`), if given there.
fn key_from_command_line(
    overrides: &Overrides,
    around: &Surroundings<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<(String, Source)>, ConfigError> {
    if let Some(path) = &overrides.api_key_file {
        let (source, text) = if path.as_os_str() == "-" {
            (Source::Stdin, (around.stdin)())
        } else {
            let source = Source::KeyFile(path.clone());
            if let Some(mode) = readable_by_others(path) {
                warnings.push(Warning::KeyFileReadable {
                    origin: source.clone(),
                    mode,
                });
            }
            (source, std::fs::read_to_string(path))
        };
        let text = text.map_err(|e| ConfigError::KeyFile {
            origin: source.clone(),
            reason: e.to_string(),
        })?;
        let key = text.lines().next().and_then(nonempty);
        return match key {
            Some(key) => Ok(Some((key, source))),
            None => Err(ConfigError::KeyFile {
                origin: source,
                reason: "it is empty; put the key on its first line".into(),
            }),
        };
    }
    let flag = overrides.api_key.as_deref().and_then(nonempty);
    if flag.is_some() {
        warnings.push(Warning::KeyOnCommandLine);
    }
    Ok(flag.map(|k| (k, Source::Flag)))
}

/// Resolves the settings for one command. `key_needed_by` names the command when it requires
/// an API key (everything but `health`, which reads no key at all).
pub fn resolve(
    overrides: &Overrides,
    around: &Surroundings<'_>,
    key_needed_by: Option<&'static str>,
) -> Result<Settings, ConfigError> {
    let mut warnings = Vec::new();
    let (url, url_source) =
        pick(overrides.url.as_deref(), URL_VAR, around).ok_or(ConfigError::MissingUrl)?;
    let base_url = parse_base_url(&url, url_source.clone(), overrides.insecure)?;
    let Some(command) = key_needed_by else {
        return Ok(Settings {
            base_url,
            api_key: None,
            warnings,
        });
    };
    let key = match key_from_command_line(overrides, around, &mut warnings)? {
        Some(key) => Some(key),
        None => pick(None, API_KEY_VAR, around),
    };
    let Some((key, key_source)) = key else {
        return Err(ConfigError::MissingApiKey { command });
    };
    if url_source == Source::DotEnv && key_source != Source::DotEnv {
        return Err(ConfigError::UrlFromDotEnvOnly { key_source });
    }
    if key_source == Source::DotEnv {
        if let Some(mode) = around.dotenv.readable_by_others {
            warnings.push(Warning::KeyFileReadable {
                origin: Source::DotEnv,
                mode,
            });
        }
    }
    Ok(Settings {
        base_url,
        api_key: ApiKey::new(&key),
        warnings,
    })
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

    fn dotenv_of(pairs: &[(&str, &str)]) -> DotEnv {
        DotEnv {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            readable_by_others: None,
        }
    }

    fn no_stdin() -> std::io::Result<String> {
        panic!("standard input must not be read")
    }

    /// Resolves with `env` and `dotenv` for a command that needs a key.
    fn run(
        overrides: &Overrides,
        env: &[(&str, &str)],
        dotenv: &DotEnv,
        command: Option<&'static str>,
    ) -> Result<Settings, ConfigError> {
        let env = env_of(env);
        let around = Surroundings {
            env: &env,
            dotenv,
            stdin: &no_stdin,
        };
        resolve(overrides, &around, command)
    }

    const FILE: &[(&str, &str)] = &[(URL_VAR, "http://127.0.0.1:1"), (API_KEY_VAR, "dotenv-key")];
    const ENV: &[(&str, &str)] = &[(URL_VAR, "http://127.0.0.2:2"), (API_KEY_VAR, "env-key")];

    fn flags(url: Option<&str>, key: Option<&str>) -> Overrides {
        Overrides {
            url: url.map(str::to_string),
            api_key: key.map(str::to_string),
            ..Overrides::default()
        }
    }

    #[test]
    fn flag_beats_env_beats_dotenv() {
        let s = run(
            &flags(Some("http://localhost:3"), Some("flag-key")),
            ENV,
            &dotenv_of(FILE),
            Some("status"),
        )
        .unwrap();
        assert_eq!(s.base_url.as_str(), "http://localhost:3/");
        assert_eq!(s.api_key.unwrap().expose(), "flag-key");
        assert_eq!(s.warnings, vec![Warning::KeyOnCommandLine]);

        let s = run(&Overrides::default(), ENV, &dotenv_of(FILE), Some("status")).unwrap();
        assert_eq!(s.base_url.as_str(), "http://127.0.0.2:2/");
        assert_eq!(s.api_key.unwrap().expose(), "env-key");
        assert!(s.warnings.is_empty());

        let s = run(&Overrides::default(), &[], &dotenv_of(FILE), Some("status")).unwrap();
        assert_eq!(s.base_url.as_str(), "http://127.0.0.1:1/");
        assert_eq!(s.api_key.unwrap().expose(), "dotenv-key");
    }

    #[test]
    fn a_dotenv_url_never_receives_a_key_from_elsewhere() {
        // The key from the environment, the URL only from ./.env: refused, naming both.
        let err = run(
            &Overrides::default(),
            &[(API_KEY_VAR, "env-key")],
            &dotenv_of(FILE),
            Some("get"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::UrlFromDotEnvOnly {
                key_source: Source::Env
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("./.env") && msg.contains("the environment"),
            "{msg}"
        );
        assert!(!msg.contains("env-key"));
        // The same with the key on the command line.
        let err = run(
            &flags(None, Some("flag-key")),
            &[],
            &dotenv_of(FILE),
            Some("get"),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::UrlFromDotEnvOnly { .. }));
        // A URL from the environment may take ./.env's key; health reads no key at all.
        let s = run(
            &Overrides::default(),
            &[(URL_VAR, "https://w.example")],
            &dotenv_of(FILE),
            Some("get"),
        )
        .unwrap();
        assert_eq!(s.api_key.unwrap().expose(), "dotenv-key");
        let s = run(
            &Overrides::default(),
            &[(API_KEY_VAR, "env-key")],
            &dotenv_of(FILE),
            None,
        )
        .unwrap();
        assert!(s.api_key.is_none());
    }

    #[test]
    fn http_only_to_this_machine_unless_insecure() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://127.1.2.3",
            "http://localhost:8787",
            "http://[::1]:8787",
            "https://worker.example.workers.dev",
        ] {
            assert!(parse_base_url(ok, Source::Env, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://worker.example.com",
            "http://10.0.0.5:8787",
            "http://[::2]",
        ] {
            let err = parse_base_url(bad, Source::Flag, false).unwrap_err();
            assert!(matches!(err, ConfigError::InsecureUrl { .. }), "{bad}");
            assert!(err.to_string().contains("--insecure"), "{err}");
            assert!(parse_base_url(bad, Source::Flag, true).is_ok(), "{bad}");
        }
    }

    #[test]
    fn key_from_a_file_or_standard_input() {
        let dir = std::env::temp_dir().join(format!("tokenctl-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "  file-key  \nsecond line ignored\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let overrides = Overrides {
            api_key_file: Some(path.clone()),
            api_key: Some("ignored".into()),
            ..flags(Some("https://w.example"), None)
        };
        let s = run(&overrides, ENV, &DotEnv::default(), Some("sync")).unwrap();
        assert_eq!(s.api_key.unwrap().expose(), "file-key");
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let s = run(&overrides, ENV, &DotEnv::default(), Some("sync")).unwrap();
            let w = s.warnings[0].to_string();
            assert!(w.contains("mode 644") && w.contains("chmod 600"), "{w}");
            assert!(!w.contains("file-key"));
        }

        std::fs::write(&path, "\n").unwrap();
        let err = run(&overrides, ENV, &DotEnv::default(), Some("sync")).unwrap_err();
        assert!(matches!(err, ConfigError::KeyFile { .. }), "{err}");
        let missing = Overrides {
            api_key_file: Some(dir.join("absent")),
            ..overrides.clone()
        };
        assert!(matches!(
            run(&missing, ENV, &DotEnv::default(), Some("sync")),
            Err(ConfigError::KeyFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();

        let stdin = || Ok("stdin-key\n".to_string());
        let env = env_of(ENV);
        let dotenv = DotEnv::default();
        let around = Surroundings {
            env: &env,
            dotenv: &dotenv,
            stdin: &stdin,
        };
        let overrides = Overrides {
            api_key_file: Some("-".into()),
            ..Overrides::default()
        };
        let s = resolve(&overrides, &around, Some("get")).unwrap();
        assert_eq!(s.api_key.unwrap().expose(), "stdin-key");
    }

    #[test]
    fn a_readable_dotenv_holding_the_key_is_warned_about() {
        let mut dotenv = dotenv_of(FILE);
        dotenv.readable_by_others = Some(0o644);
        let s = run(&Overrides::default(), &[], &dotenv, Some("status")).unwrap();
        assert_eq!(
            s.warnings,
            vec![Warning::KeyFileReadable {
                origin: Source::DotEnv,
                mode: 0o644
            }]
        );
        assert_eq!(
            s.warnings[0].to_string(),
            "./.env holds the API key and other users can read it (mode 644): chmod 600 .env"
        );
        // The key from the environment: the file's mode does not matter.
        let s = run(
            &Overrides::default(),
            &[(URL_VAR, "https://w.example"), (API_KEY_VAR, "k")],
            &dotenv,
            Some("status"),
        )
        .unwrap();
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn empty_values_count_as_unset() {
        let s = run(
            &flags(Some(""), Some("  ")),
            &[(URL_VAR, ""), (API_KEY_VAR, "env-key")],
            &dotenv_of(&[(URL_VAR, "https://dotenv.example")]),
            None,
        )
        .unwrap();
        assert_eq!(s.base_url.as_str(), "https://dotenv.example/");
        let s = run(
            &flags(None, Some("  ")),
            &[(URL_VAR, "https://env.example"), (API_KEY_VAR, "env-key")],
            &DotEnv::default(),
            Some("status"),
        )
        .unwrap();
        assert_eq!(s.api_key.unwrap().expose(), "env-key");
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn missing_settings_are_named() {
        let err = run(&Overrides::default(), &[], &DotEnv::default(), Some("sync")).unwrap_err();
        assert_eq!(err, ConfigError::MissingUrl);
        assert!(err.to_string().contains("TOKEN_MANAGER_URL"));
        assert!(err.to_string().contains("--url"));

        let err = run(
            &Overrides::default(),
            &[(URL_VAR, "http://127.0.0.1:8787")],
            &DotEnv::default(),
            Some("sync"),
        )
        .unwrap_err();
        assert_eq!(err, ConfigError::MissingApiKey { command: "sync" });
        let msg = err.to_string();
        assert!(msg.contains("TOKEN_MANAGER_API_KEY") && msg.contains("`sync`"));
        assert!(msg.contains("--api-key-file"));
    }

    #[test]
    fn bad_urls_are_refused_with_their_source() {
        for bad in ["not a url", "ftp://x.example", "mailto:a@b.example"] {
            let err = run(
                &Overrides::default(),
                &[(URL_VAR, bad), (API_KEY_VAR, "k")],
                &DotEnv::default(),
                Some("status"),
            )
            .unwrap_err();
            match &err {
                ConfigError::InvalidUrl { origin, .. } => assert_eq!(*origin, Source::Env),
                other => panic!("{bad}: {other:?}"),
            }
            assert!(err.to_string().contains("the environment"));
        }
        let err = parse_base_url("https://user:secret@x.example", Source::Flag, false).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidUrl { .. }));
    }

    #[test]
    fn api_key_never_shows_in_debug() {
        let s = run(
            &flags(Some("https://x.example"), Some("super-secret-value")),
            &[],
            &DotEnv::default(),
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        let dotenv = read_dotenv(&path).unwrap();
        assert_eq!(dotenv.values[URL_VAR], "http://file.example:9");
        assert_eq!(dotenv.values[API_KEY_VAR], "quoted key");
        #[cfg(unix)]
        assert_eq!(dotenv.readable_by_others, Some(0o640));
        assert!(read_dotenv(&dir.join("absent")).unwrap().values.is_empty());
        std::fs::write(&path, "THIS IS NOT = valid 'dotenv\n").unwrap();
        assert!(matches!(
            read_dotenv(&path),
            Err(ConfigError::DotEnv { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
