//! Domain types of the token manager: account names and their relationships, the values
//! trading apps write to Redis, where a token's expiry comes from, and a token's secrets in
//! plaintext and sealed.
//!
//! Nothing in here does I/O or reads the clock: the current time is always passed in, so every
//! function is deterministic (apart from the random nonces of sealing) and runs the same
//! natively and inside workerd (wasm).

pub mod access;
pub mod account;
pub mod candidate;
pub mod expiry;
pub mod health;
pub mod loss;
pub mod renewal;
pub mod sealed;
pub mod token_value;
