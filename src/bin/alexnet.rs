//! The `alexnet` binary; the command line lives in `alexnet::cli`.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    alexnet::cli::main()
}

// The wasm build (wasm-pack test builds every target) has no command line.
#[cfg(target_arch = "wasm32")]
fn main() {}
