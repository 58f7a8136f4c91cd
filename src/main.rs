//! The `openclaw` binary: parse the command line and dispatch. All logic lives in the library.

fn main() -> std::process::ExitCode {
    openclaw::cli::run()
}
