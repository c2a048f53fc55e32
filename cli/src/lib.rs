//! `tokenctl`: the command-line client of the token-manager Worker.
//!
//! One module per concern: [`cli`] (arguments), [`config`] (URL and key: flag > env > `.env`),
//! [`client`] (routes and HTTP), [`model`] (tolerant reading of the API's answers),
//! [`render`] (the seed's human layout), [`duration`] (`10m`, `90s`, `2h`), [`spinner`],
//! [`error`] (error enums and exit codes) and [`app`] (one run, tying them together).

pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod duration;
pub mod error;
pub mod model;
pub mod render;
pub mod spinner;

use std::io::IsTerminal;

/// Runs tokenctl with the process's arguments, environment and `./.env`; returns the exit code.
pub fn main_exit_code() -> i32 {
    use clap::Parser;
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let env = |k: &str| std::env::var(k).ok();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let stdout_is_terminal = stdout.is_terminal();
    let stderr_is_terminal = stderr.is_terminal();
    let dotenv = match config::read_dotenv(std::path::Path::new(".env")) {
        Ok(map) => map,
        Err(e) => {
            let e = error::CliError::Config(e);
            let st = render::Style::detect(
                stderr_is_terminal,
                cli.no_color,
                std::env::var("NO_COLOR").ok().as_deref(),
            );
            eprint!("{}", render::error(&e, st));
            return e.exit_code();
        }
    };
    let ctx = app::Context {
        env: &env,
        dotenv,
        stdout_is_terminal,
        stderr_is_terminal,
    };
    // Unlocked handles: the spinner thread writes to stderr while the request runs.
    app::run(&cli, &ctx, &mut stdout, &mut stderr)
}
