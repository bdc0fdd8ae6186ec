//! The `rapport` binary. Everything it does lives in the library's
//! [`rapport::cli`], so the binary is compiled (and linked) once.

fn main() -> std::process::ExitCode {
    rapport::cli::main()
}
