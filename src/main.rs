//! The `mmf` binary: CLI, operator (`mmf run`) and local sandbox (`mmf dev`).

fn main() -> std::process::ExitCode {
    mmf_operator::cli::main()
}
