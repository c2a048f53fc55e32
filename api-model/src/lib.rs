//! The token-manager API's answers, one type per report, shared by the Worker (which
//! serialises them) and tokenctl (which deserialises them): a field renamed on one side no
//! longer compiles on the other.
//!
//! One module per route. **A new route's answer goes here**: add `src/<route>.rs` with a
//! `<Name>Report` deriving `Serialize` and `Deserialize`, re-export it below, build it in the
//! Worker's job (`src/jobs/<route>.rs`) and render it in tokenctl (`cli/src/render.rs`).
//! A field added to an existing report is `Option<_>` or `#[serde(default)]`, so that a
//! tokenctl built from this crate still reads the answers of a Worker deployed before it.
//!
//! Dependencies are what the Worker's wasm bundle already holds (serde, serde_json, chrono),
//! so sharing costs the bundle nothing.

pub mod accounts;
pub mod audit;
pub mod cleanup;
pub mod error;
pub mod health;
pub mod list;
pub mod reencrypt;
pub mod renew;
pub mod restore;
pub mod runs;
pub mod status;
pub mod sync;
pub mod token;

pub use accounts::{
    AccountHealth, AccountState, AccountsReport, LastRead, MainAccountHealth, RenewalInfo,
};
pub use audit::{AuditReport, TokenRead};
pub use cleanup::CleanupReport;
pub use error::{ErrorBody, ErrorDetail};
pub use health::HealthReport;
pub use list::{ListReport, TokenSummary};
pub use reencrypt::ReencryptReport;
pub use renew::{Environment, LastRenew, RenewOutcome, RenewReport, RenewalStatus, SessionResult};
pub use restore::{PresentKey, RestoreReport, RestoredKey, SkippedToken};
pub use runs::{RunSummary, RunsReport};
pub use status::{LastRestore, LastSync, RecentToken, RedisTokensSource, StatusReport};
pub use sync::{Outcome, RedisLoss, Skipped, SyncReport};
pub use token::TokenReport;
