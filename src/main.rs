//! The egressc command line; everything happens in the library (`egressc::run`).

fn main() -> std::process::ExitCode {
    egressc::run()
}
