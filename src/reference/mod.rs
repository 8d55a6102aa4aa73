//! The CPU reference ("the oracle"): a plain forward and backward function per layer, on flat
//! `f32` slices, with a small geometry struct per layer. Every GPU kernel is tested against
//! these, so they are written to be obviously correct, not fast: no SIMD, no blocking, one
//! loop nest per formula, summation in a fixed order.
//!
//! Conventions shared by every file here:
//! - activations are row-major `(N, C, H, W)` or `(N, F)`; each function states its shapes;
//! - forward writes into a caller-provided output (and whatever backward needs: max-pool's
//!   argmax, LRN's scale); backward writes (not accumulates) the input gradient and the
//!   parameter gradients;
//! - backward passes are written as gathers (one loop per gradient element) where that is
//!   natural, because WGSL has no float atomics and the GPU kernels will be gathers too;
//! - every slice length is checked against the geometry first: a wrong size is
//!   `Error::Shape`, never a panic or an out-of-bounds read.
//!
//! Flatten has no function: `(N, C, H, W)` and `(N, C*H*W)` are the same bytes in `(C, H, W)`
//! order, so the network only relabels the shape (forward and backward).

pub mod conv;
pub mod linear;
pub mod lrn;
pub mod network;
pub mod pool;

pub use conv::{conv2d_backward, conv2d_forward};
// The elementwise layers have one definition for every CPU path (`crate::elementwise`);
// the reference presents them with its own layers.
pub use crate::elementwise::{
    dropout_backward, dropout_forward, dropout_keep, dropout_layer_seed, pcg_hash, relu_backward,
    relu_forward, sgd_update, softmax_backward, softmax_forward, softmax_xent_backward,
    softmax_xent_forward, Sgd,
};
pub use linear::{linear_backward, linear_forward};
pub use lrn::{lrn_backward, lrn_forward};
pub use pool::{
    adaptive_avgpool_backward, adaptive_avgpool_forward, maxpool_backward, maxpool_forward,
};
