//! `tokenctl` entry point; everything lives in the library.

fn main() {
    std::process::exit(tokenctl::main_exit_code());
}
