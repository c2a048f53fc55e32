//! Replacing `redis_client.get(f"token:{account}")` in a Rust trading app: fetch the token from
//! the token-manager Worker. The snippet in cli/README.md is this file.
//!
//! ```sh
//! TOKEN_MANAGER_URL=http://127.0.0.1:8787 TOKEN_MANAGER_API_KEY=... \
//!     cargo run -p tokenctl --example get_token -- APEX_136189
//! ```

use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::Url;
use serde::Deserialize;

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
}

/// The account's token, or `None` when the account is unknown (404) or its token expired or
/// went inactive (410). Other statuses (401, 403, 5xx) are errors.
fn get_token(
    client: &Client,
    base_url: &str,
    api_key: &str,
    account: &str,
) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let mut url = Url::parse(base_url)?;
    url.path_segments_mut()
        .map_err(|()| "TOKEN_MANAGER_URL must be an http(s) URL")?
        .pop_if_empty()
        .extend(["v1", "tokens", account]); // percent-encodes the account as one segment
    let resp = client.get(url).bearer_auth(api_key).send()?;
    match resp.status().as_u16() {
        200 => Ok(Some(resp.json::<TokenAnswer>()?.token)),
        404 | 410 => Ok(None),
        status => Err(format!("token-manager answered {status}: {}", resp.text()?).into()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_url = std::env::var("TOKEN_MANAGER_URL")?;
    let api_key = std::env::var("TOKEN_MANAGER_API_KEY")?; // the read key is enough
    let account = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "APEX_136189".into());
    let client = Client::builder().timeout(Duration::from_secs(10)).build()?;
    match get_token(&client, &base_url, &api_key, &account)? {
        Some(token) => println!("got a token for {account} ({} chars)", token.len()),
        None => println!("no usable token for {account}"),
    }
    Ok(())
}
