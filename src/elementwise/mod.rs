//! The elementwise layers and the optimiser step, each with one f32 definition that every
//! CPU path runs (the reference and the fast backend) and that the GPU kernels reproduce:
//! ReLU, dropout (its mask is a hash of `(seed, index)`, so a kernel regenerates it without
//! storing it), softmax and the fused softmax cross-entropy (sums in f64), and SGD with
//! momentum in the paper's form. Shapes are flat slices, `(N, K)` where rows matter.

pub mod dropout;
pub mod relu;
pub mod sgd;
pub mod softmax;

pub use dropout::{dropout_backward, dropout_forward, dropout_keep, dropout_layer_seed, pcg_hash};
pub use relu::{relu_backward, relu_forward};
pub use sgd::{sgd_update, Sgd};
pub use softmax::{
    softmax_backward, softmax_forward, softmax_xent, softmax_xent_backward, softmax_xent_forward,
};
