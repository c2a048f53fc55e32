//! Pure domain types of the token manager: account names and their relationships, the values
//! trading apps write to Redis, and where a token's expiry comes from.
//!
//! Nothing in here does I/O or reads the clock: the current time is always passed in, so every
//! function is deterministic and runs the same natively and inside workerd (wasm).

pub mod access;
pub mod account;
pub mod expiry;
pub mod token_value;

pub use account::{main_account_for, AccountName, AccountNameError, KeyType};
pub use expiry::{jwt_exp, resolve_expiry, ExpirySource};
pub use token_value::{parse_token_value, SkipReason, TokenType, TokenValue, ValueFormat};
