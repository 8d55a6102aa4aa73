//! The model as data: an architecture is a list of layers plus the input size, the
//! preprocessing and the label set; a model is an architecture with its parameters.
//!
//! - [`layer`]: the layer specs (`ConvSpec`, `LrnSpec`, ...) and `Layer`'s shape rules;
//! - [`arch`]: `Arch` (input, layers, preprocessing, labels), its checks and summaries;
//! - [`configs`]: the built-in architectures (`paper`, `bvlc`, `torchvision`, `mini`);
//! - [`geometry`]: each layer's geometry at a batch size (`ConvGeom`, `PoolGeom`, ...), the
//!   one description every backend's loops and kernels are built from;
//! - [`network`]: `Model`, an architecture with its parameters;
//! - [`plan`]: the per-layer walk of an `Arch` at a batch size, geometry included;
//! - [`trace`]: what a training forward keeps for its backward, shared by every backend.
//!
//! Shapes: every layer maps a per-image shape (`(C, H, W)` or `(F)`) to another; the batch
//! dimension `N` is implicit in `layer` and `arch`, explicit in `geometry` and `plan`.

pub mod arch;
pub mod configs;
pub mod geometry;
pub mod layer;
pub mod network;
pub mod plan;
pub mod trace;

pub use arch::*;
pub use configs::{bvlc, mini, paper, torchvision};
pub use geometry::{AvgPoolGeom, ConvGeom, LinearGeom, LrnGeom, PoolGeom};
pub use layer::*;
pub use network::{loss_layers, Model, Params};
pub use plan::{Geom, Step};
pub use trace::{Mode, Saved, Trace};
