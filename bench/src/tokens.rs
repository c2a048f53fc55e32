//! Redis keys and values shaped like the trading back end's: Apex main accounts with their
//! PA sub-accounts, mostly raw JWTs, every third a Tradovate `accessTokenRequest` JSON blob
//! (`accessToken`, `mdAccessToken`, `expirationTime`, ...), and one in 50 an opaque token
//! whose only expiry is its Redis TTL. Deterministic: the same `n` and generation give the
//! same data.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

/// The key prefix the Worker scans (`token:*`, its default pattern).
pub const PREFIX: &str = "token:";

/// One Redis key to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub key: String,
    pub value: String,
    /// `SET ... PX` when set: the opaque tokens, whose expiry only Redis knows.
    pub ttl_ms: Option<u64>,
}

/// `n` account names: for 22 the seed's demo set (3 mains, 19 PA sub-accounts); otherwise
/// mains `APEX_<6 digits>`, each followed by up to 9 sub-accounts `PAAPEX<6 digits><7 digits>`.
pub fn accounts(n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let groups: Vec<(u32, usize)> = if n == 22 {
        vec![(136_189, 7), (266_668, 6), (272_045, 6)]
    } else {
        (0..n.div_ceil(10))
            .map(|g| (100_000 + 7 * g as u32, 9))
            .collect()
    };
    for (main, subs) in groups {
        out.push(format!("APEX_{main}"));
        for seq in 1..=subs {
            out.push(format!("PAAPEX{main}{seq:07}"));
        }
    }
    out.truncate(n);
    out
}

/// The Redis data for `n` accounts. `generation` 0 is the first write; a token written with
/// another generation is a different token (new `jti`, signature and expiry).
pub fn seeds(n: usize, generation: u64, now: DateTime<Utc>) -> Vec<Seed> {
    accounts(n)
        .into_iter()
        .enumerate()
        .map(|(i, account)| seed(i, &account, generation, now))
        .collect()
}

/// Whether token `i` changes in the "10% changed" round: every tenth one.
pub fn changes_in_round(i: usize) -> bool {
    i.is_multiple_of(10)
}

/// The data for account number `i`.
pub fn seed(i: usize, account: &str, generation: u64, now: DateTime<Utc>) -> Seed {
    let mut rng = SplitMix(
        (i as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(generation.wrapping_mul(0xD1B5_4A32_D192_ED03))
            .wrapping_add(1),
    );
    let key = format!("{PREFIX}{account}");
    let user_id = 2_000_000 + i as u64;
    // Tradovate access tokens live 80 minutes; spread the writes over that window.
    let exp = now + TimeDelta::minutes(20 + (rng.next() % 60) as i64);
    if i % 50 == 49 {
        let token = URL_SAFE_NO_PAD.encode(rng.bytes(48));
        return Seed {
            key,
            value: token,
            ttl_ms: Some((exp - now).num_milliseconds() as u64),
        };
    }
    let token = jwt(&mut rng, user_id, exp);
    let value = if i % 3 == 2 {
        json!({
            "accessToken": token,
            "mdAccessToken": jwt(&mut rng, user_id, exp),
            "expirationTime": exp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "userStatus": "Active",
            "userId": user_id,
            "name": account,
            "hasLive": false,
            "outdatedTaC": false,
            "hasFunded": true,
            "hasMarketData": true,
            "outdatedLiquidationPolicy": false,
        })
        .to_string()
    } else {
        token
    };
    Seed {
        key,
        value,
        ttl_ms: None,
    }
}

/// An HS256 JWT with Tradovate-like claims, about 420 characters.
fn jwt(rng: &mut SplitMix, user_id: u64, exp: DateTime<Utc>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = json!({
        "sub": user_id.to_string(),
        "exp": exp.timestamp(),
        "iat": exp.timestamp() - 4800,
        "nbf": exp.timestamp() - 4800,
        "jti": hex(&rng.bytes(16)),
        "phs": rng.next() % 100_000_000,
        "h": URL_SAFE_NO_PAD.encode(rng.bytes(32)),
        "sfid": rng.next() % 10_000_000,
        "aid": rng.next() % 1_000_000,
        "ar": ["Trader", "MarketData"],
        "env": "demo",
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signature = URL_SAFE_NO_PAD.encode(rng.bytes(32));
    format!("{header}.{payload}.{signature}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SplitMix64: small, deterministic, good enough for made-up tokens.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .take(n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use token_manager::domain::expiry::{resolve_expiry, ExpirySource, Ttl};
    use token_manager::domain::token_value::parse_token_value;

    #[test]
    fn demo_size_is_the_seed_demo_set() {
        let a = accounts(22);
        assert_eq!(a.len(), 22);
        assert_eq!(a[0], "APEX_136189");
        assert_eq!(a[1], "PAAPEX1361890000001");
        assert_eq!(accounts(10_000).len(), 10_000);
        let unique: std::collections::HashSet<_> = accounts(10_000).into_iter().collect();
        assert_eq!(unique.len(), 10_000);
    }

    #[test]
    fn values_parse_with_the_expected_expiry_sources() {
        let now = Utc::now();
        let data = seeds(100, 0, now);
        let mut sources = std::collections::HashMap::new();
        for s in &data {
            let value = parse_token_value(s.value.as_bytes()).expect("parses");
            let ttl = s.ttl_ms.map_or(Ttl::Persistent, Ttl::Millis);
            let (_, source) = resolve_expiry(&value, ttl, now);
            *sources.entry(source).or_insert(0) += 1;
        }
        assert_eq!(sources[&ExpirySource::RedisTtl], 2);
        assert!(sources[&ExpirySource::JwtExp] > 50);
        assert!(sources[&ExpirySource::Explicit] > 25);
    }

    #[test]
    fn a_new_generation_changes_every_token() {
        let now = Utc::now();
        let (a, b) = (seeds(50, 0, now), seeds(50, 1, now));
        assert!(a
            .iter()
            .zip(&b)
            .all(|(x, y)| x.key == y.key && x.value != y.value));
        assert_eq!(seeds(50, 0, now), a);
    }
}
