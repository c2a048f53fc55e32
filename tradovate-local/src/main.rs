//! `tradovate-local` binary: see the crate's README.md for flags, endpoints and switches.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = tradovate_local::Config::parse();
    match tradovate_local::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tradovate-local: error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
