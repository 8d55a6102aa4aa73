//! Helpers shared by the integration tests (`mod common;` in each test file).
//!
//! Only mechanics live here: every tolerance stays next to the tests that use it, with its
//! justification. Each test crate uses a subset of these helpers, hence the `dead_code`
//! allowance.
//!
//! - [`check`]: comparisons, seeded random data, layer specs; portable (also in the browser);
//! - [`native`]: `.npy` files, the GPU context (`gpu()`, failing under `CI=true` when there is
//!   no adapter) and `block_on`; native only.
#![allow(dead_code)]

pub mod check;
#[allow(unused_imports)]
pub use check::*;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(not(target_arch = "wasm32"))]
#[allow(unused_imports)]
pub use native::*;
