//! The WebGPU backward path and optimiser against the CPU reference, natively (Mesa lavapipe
//! on a machine without a GPU): one `#[test]` per case of `gpu_cases::backward` (every
//! backward kernel, the loss, SGD and `GpuTrainer`; the same cases run in headless Chromium
//! from tests/web.rs).
//!
//! No adapter: every test prints a loud SKIPPED line and passes, unless `CI=true`, where it
//! fails (see `common::gpu()`).
#![cfg(not(target_arch = "wasm32"))]

mod common;
mod gpu_cases;

use gpu_cases::native_tests;

gpu_cases::backward_cases!(native_tests);
