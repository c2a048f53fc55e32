//! `cargo xtask`: project tasks written in Rust rather than bash (rust-analyzer's `xtask/` is
//! the model). `config-check` asks the Worker's own configuration code what is wrong with a
//! set of settings (scripts/deploy.sh runs it); `lockfile-check` holds the supply-chain rules
//! of Cargo.lock (the tests run it).

mod config_check;
mod lockfile_check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Loads the Worker's settings (wrangler.toml [vars], then the environment) through
    /// `Config::from_lookup` and prints each problem, one a line:
    /// `missing<TAB>NAME<TAB>message` or `invalid<TAB>NAME<TAB>message`, then one
    /// `cron<TAB>EXPRESSION<TAB>sync|cleanup|none` line per wrangler.toml trigger.
    /// Exit 0: no problem; 1: problems; 2: wrangler.toml unreadable.
    ConfigCheck {
        /// The wrangler.toml whose [vars] and [triggers] the deployed Worker gets.
        #[arg(long, default_value = "wrangler.toml")]
        wrangler_toml: PathBuf,
        /// A setting the Worker already has (a Cloudflare secret not set here): not checked.
        #[arg(long, value_name = "NAME")]
        kept: Vec<String>,
        /// Missing settings are listed but are no problem (a dry run cannot know the Worker's).
        #[arg(long)]
        allow_missing: bool,
    },
    /// Checks Cargo.lock: one reqwest, rustls and hyper, none of the versions with known
    /// advisories (reqwest 0.11's rustls-webpki 0.101, h2 0.3), crates from crates.io only.
    LockfileCheck {
        /// The lockfile.
        #[arg(long, default_value = "Cargo.lock")]
        lockfile: PathBuf,
    },
}

fn main() -> ExitCode {
    match Xtask::parse().task {
        Task::ConfigCheck {
            wrangler_toml,
            kept,
            allow_missing,
        } => config_check::run(&wrangler_toml, &kept, allow_missing),
        Task::LockfileCheck { lockfile } => lockfile_check::run(&lockfile),
    }
}
