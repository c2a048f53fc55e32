//! Users, sessions and their tokens. A login (`accesstokenrequest`) opens a session and mints
//! a token; a renewal extends the same session with a new token and expiry. A user holds at
//! most `max_sessions_per_user` sessions: one more login closes the oldest, whose tokens stop
//! working (what makes a fresh login kick other bots that share a token).

use std::collections::{HashMap, VecDeque};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What a successful login or renewal hands out: the documented response fields.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The new access token (JWT-shaped; the signature is random bytes).
    pub access_token: String,
    /// The new market-data token.
    pub md_access_token: String,
    /// When `access_token` stops working.
    pub expiration_time: DateTime<Utc>,
    /// The user's numeric id.
    pub user_id: u64,
    /// The user's name.
    pub name: String,
}

impl Issued {
    /// The documented response body (`accessToken`, `mdAccessToken` unless `omit_md`,
    /// `expirationTime`, `passwordExpirationTime`, `userStatus`, `userId`, `name`, `hasLive`).
    pub fn body(&self, omit_md: bool) -> Value {
        let mut body = json!({
            "accessToken": self.access_token,
            "expirationTime": timestamp(self.expiration_time),
            "passwordExpirationTime": timestamp(self.expiration_time + Duration::days(90)),
            "userStatus": "Active",
            "userId": self.user_id,
            "name": self.name,
            "hasLive": false,
        });
        if !omit_md {
            body["mdAccessToken"] = json!(self.md_access_token);
        }
        body
    }
}

/// Tradovate's timestamp form: RFC 3339, UTC, milliseconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Why a token is not accepted for renewal (all answer 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Never issued here.
    Unknown,
    /// Past its `expirationTime`.
    Expired,
    /// Its session was closed by a later login.
    SessionClosed,
}

impl Rejected {
    /// A short word for the request log.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Unknown => "unknown_token",
            Rejected::Expired => "expired_token",
            Rejected::SessionClosed => "session_closed",
        }
    }
}

/// One session as the admin statistics show it (no token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session number, from 1.
    pub id: u64,
    /// The user who logged in.
    pub name: String,
    /// The user's id.
    pub user_id: u64,
    /// False once a later login closed it.
    pub open: bool,
    /// Renewals so far.
    pub renewals: u64,
    /// Tokens handed out (the login's and each renewal's).
    pub tokens_issued: u64,
}

struct Session {
    user_id: u64,
    name: String,
    open: bool,
    renewals: u64,
    tokens_issued: u64,
}

/// Every user, session and token issued since start (or the last reset).
#[derive(Default)]
pub struct Sessions {
    sessions: HashMap<u64, Session>,
    /// Token → (session, expiry).
    tokens: HashMap<String, (u64, DateTime<Utc>)>,
    /// User name → open sessions, oldest first.
    by_user: HashMap<String, VecDeque<u64>>,
    next_id: u64,
}

impl Sessions {
    /// Opens a session for `name` with a token living `lifetime`; closes the user's oldest
    /// session when that would exceed `max_sessions`.
    pub fn login(
        &mut self,
        name: &str,
        lifetime: Duration,
        max_sessions: usize,
        now: DateTime<Utc>,
    ) -> Issued {
        self.next_id += 1;
        let id = self.next_id;
        let user_id = user_id_of(name);
        let open = self.by_user.entry(name.to_string()).or_default();
        open.push_back(id);
        while open.len() > max_sessions {
            if let Some(oldest) = open.pop_front() {
                if let Some(session) = self.sessions.get_mut(&oldest) {
                    session.open = false;
                }
            }
        }
        self.sessions.insert(
            id,
            Session {
                user_id,
                name: name.to_string(),
                open: true,
                renewals: 0,
                tokens_issued: 0,
            },
        );
        self.issue(id, lifetime, now)
    }

    /// Renews the session `token` belongs to: a new token and expiry for the same session.
    /// The old token keeps working until its own expiry.
    pub fn renew(
        &mut self,
        token: &str,
        lifetime: Duration,
        now: DateTime<Utc>,
    ) -> Result<Issued, Rejected> {
        let (id, expires) = *self.tokens.get(token).ok_or(Rejected::Unknown)?;
        if expires <= now {
            return Err(Rejected::Expired);
        }
        let session = self.sessions.get_mut(&id).ok_or(Rejected::Unknown)?;
        if !session.open {
            return Err(Rejected::SessionClosed);
        }
        session.renewals += 1;
        Ok(self.issue(id, lifetime, now))
    }

    /// Every session, oldest first.
    pub fn info(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self
            .sessions
            .iter()
            .map(|(id, s)| SessionInfo {
                id: *id,
                name: s.name.clone(),
                user_id: s.user_id,
                open: s.open,
                renewals: s.renewals,
                tokens_issued: s.tokens_issued,
            })
            .collect();
        all.sort_by_key(|s| s.id);
        all
    }

    fn issue(&mut self, id: u64, lifetime: Duration, now: DateTime<Utc>) -> Issued {
        let session = self.sessions.get_mut(&id).expect("the session exists");
        session.tokens_issued += 1;
        let expiration_time = now + lifetime;
        let access_token = jwt(session.user_id, &session.name, id, now, expiration_time);
        let md_access_token = jwt(session.user_id, &session.name, id, now, expiration_time);
        self.tokens
            .insert(access_token.clone(), (id, expiration_time));
        Issued {
            access_token,
            md_access_token,
            expiration_time,
            user_id: session.user_id,
            name: session.name.clone(),
        }
    }
}

/// The user id of a name: its trailing digits when it has some (`apex136189` → 136189, like
/// the demo accounts), else a stable number derived from the name.
pub fn user_id_of(name: &str) -> u64 {
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && digits.len() <= 12 => n,
        _ => {
            // FNV-1a: stable across runs and platforms.
            let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            1_000_000 + hash % 9_000_000
        }
    }
}

/// A JWT-shaped token: `exp` is its expiry, `sid` its session; the signature is random.
fn jwt(user_id: u64, name: &str, session: u64, now: DateTime<Utc>, exp: DateTime<Utc>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({
        "sub": user_id.to_string(), "name": name, "sid": session,
        "iat": now.timestamp(), "exp": exp.timestamp(), "jti": hex(&random::<8>()),
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(random::<32>());
    format!("{header}.{payload}.{signature}")
}

/// `N` random bytes from the operating system.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the OS has a random source");
    bytes
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_keeps_the_session_and_a_third_login_closes_the_oldest() {
        let now = Utc::now();
        let life = Duration::minutes(80);
        let mut s = Sessions::default();
        let first = s.login("apex136189", life, 2, now);
        assert_eq!(first.user_id, 136189);
        assert_eq!(first.expiration_time, now + life);
        let renewed = s.renew(&first.access_token, life, now).unwrap();
        assert_ne!(renewed.access_token, first.access_token);
        assert_eq!(s.info().len(), 1, "renewal opened no session");
        assert_eq!(s.info()[0].renewals, 1);

        s.login("apex136189", life, 2, now);
        s.login("apex136189", life, 2, now);
        assert_eq!(
            s.renew(&renewed.access_token, life, now).unwrap_err(),
            Rejected::SessionClosed
        );
        assert_eq!(s.renew("nope", life, now).unwrap_err(), Rejected::Unknown);
        let later = now + Duration::minutes(81);
        let third = s.login("other", life, 2, now);
        assert_eq!(
            s.renew(&third.access_token, life, later).unwrap_err(),
            Rejected::Expired
        );
    }

    #[test]
    fn tokens_are_jwt_shaped_with_exp() {
        let now = Utc::now();
        let issued = Sessions::default().login("x", Duration::minutes(80), 2, now);
        let payload = issued.access_token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["exp"], (now + Duration::minutes(80)).timestamp());
        assert!(user_id_of("x") >= 1_000_000);
    }
}
