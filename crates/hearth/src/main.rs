//! The `hearth` command line: scripting, tests and benchmarks over the same services as the app.
//! JSON goes to stdout, errors to stderr with a non-zero exit.

mod cli;

fn main() {
    engine::memory::configure_malloc();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = cli::run() {
        eprintln!("error: {e:#}");
        if let Some(hint) = cli::hint(&e) {
            eprintln!("hint: {hint}");
        }
        std::process::exit(1);
    }
}
