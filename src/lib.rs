//! AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012) in Rust.
//!
//! Native-first: everything here runs under plain `cargo test`; `wasm` is the only module
//! that knows about JavaScript.

pub mod augment;
pub mod backend;
pub mod classify;
pub mod cpu;
pub mod data;
pub mod elementwise;
pub mod error;
pub mod finetune;
pub mod gpu;
pub mod inspect;
pub mod io;
pub mod labels;
pub mod model;
pub mod preprocess;
pub mod reference;
pub mod session;
pub mod shape;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use model::Arch;
pub use model::Model;
pub use tensor::Tensor;

pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
#[cfg(not(target_arch = "wasm32"))]
pub mod npy;

#[cfg(target_arch = "wasm32")]
pub mod wasm;
