//! `upstash-local` binary: see the crate's README.md for flags, protocol and log format.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = upstash_local::Config::parse();
    match upstash_local::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("upstash-local: error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
