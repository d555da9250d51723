//! The `fleetsim` binary: parses flags and hands over to [`fleetsim::cli`].

fn main() -> std::process::ExitCode {
    fleetsim::cli::main()
}
