//! The `rapport` command; everything lives in the library (`rapport::cli`).

/// mimalloc instead of glibc's malloc: a search allocates many small,
/// short-lived buffers on two threads, and glibc's arenas spent a fifth of
/// the CPU on them (profile in BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rapport::cli::main()
}
