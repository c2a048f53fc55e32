//! `tokenctl`: the command-line client of the token-manager Worker.
//!
//! One module per concern: [`cli`] (arguments), [`config`] (URL and key: flag > env > `.env`,
//! and what is refused), [`client`] (routes and HTTP), [`render`] (the seed's human layout,
//! from the Worker's own report types in `api_model`), [`duration`] (`10m`, `90s`, `2h`),
//! [`spinner`], [`error`] (error enums and exit codes) and [`app`] (one run, tying them
//! together).

pub mod app;
pub mod cli;
pub mod client;
pub mod config;
pub mod duration;
pub mod error;
pub mod render;
pub mod spinner;

use std::io::{IsTerminal, Read};

/// Whether `stream` shows colour: anstream's choice (a terminal; `NO_COLOR`, `CLICOLOR`,
/// `CLICOLOR_FORCE`, `TERM=dumb`), and never with `--no-color`.
fn shows_color<S: anstream::stream::RawStream>(stream: &S, no_color_flag: bool) -> bool {
    !no_color_flag && anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

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
    let stdin = || {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    };
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let stderr_color = shows_color(&stderr, cli.no_color);
    let dotenv = match config::read_dotenv(std::path::Path::new(".env")) {
        Ok(dotenv) => dotenv,
        Err(e) => {
            let e = error::CliError::Config(e);
            let line = render::error(&e);
            let line = if stderr_color {
                line
            } else {
                render::plain(&line)
            };
            eprint!("{line}");
            return e.exit_code();
        }
    };
    let ctx = app::Context {
        env: &env,
        dotenv,
        stdin: &stdin,
        stdout_is_terminal: stdout.is_terminal(),
        stderr_is_terminal: stderr.is_terminal(),
        stdout_color: shows_color(&stdout, cli.no_color),
        stderr_color,
    };
    // Unlocked handles: the spinner thread writes to stderr while the request runs.
    app::run(&cli, &ctx, &mut stdout, &mut stderr)
}
