//! ONNX import and export, bytes in and bytes out (no file system, so it runs in wasm).
//!
//! The protobuf messages are declared with `prost` derives in `onnx_proto.rs`; nothing here
//! parses protobuf by hand.
//!
//! ## Import
//! The graph must be a chain: every compute node reads the previous node's output (plus
//! constants: initializers, `Constant` or `ConstantOfShape` nodes). Supported ops and how they
//! map to our layers:
//!
//! | ONNX | layer | conditions |
//! |---|---|---|
//! | Conv | `conv{k}` | 2-D, dilations 1, `auto_pad` NOTSET/VALID |
//! | Relu | `relu{k}` / `relu{m}` | k / m = the last conv / fc |
//! | LRN | `norm{k}` | ONNX divides alpha by `size`: `LrnAlpha::OverN` |
//! | MaxPool | `pool{k}` | dilations 1, storage_order 0, `ceil_mode` -> `Rounding` |
//! | AveragePool | `avgpool` (adaptive) | kernel == stride, no pads, input divisible |
//! | GlobalAveragePool | `avgpool` (adaptive 1x1) | |
//! | Flatten / Reshape | `flatten` | Flatten axis 1; Reshape to (N or 0 or -1 or 1, -1 or F) |
//! | Gemm | `fc{nconv + j}` | transA 0; transB 0 is transposed; alpha, beta folded in |
//! | MatMul (+ Add) | `fc{nconv + j}` | constant (in, out) matrix; a following constant Add is the bias |
//! | Dropout | `drop{m}` | kept as a layer (identity at inference) with its ratio |
//! | Softmax | `prob` | axis 1 or -1 on a flat input |
//! | Identity | (skipped) | |
//!
//! Dropout names follow the builtins: if a dropout comes before the first fc (torchvision's
//! layout) every dropout is named after the fc that follows it, otherwise (Caffe's layout)
//! after the fc whose ReLU it follows.
//!
//! ### Family recognition
//! 1. `metadata_props["alexnet.arch"]` (written by [`export`]) is used verbatim, after
//!    checking that it describes the same computation as the graph.
//! 2. Layers equal to a builtin's (and the same input) -> that builtin.
//! 3. Equal to a builtin's ignoring Dropout layers (an eval-mode torch export has none) and up
//!    to equivalent max-pool encodings (ceil rounding vs. explicit trailing pads giving the same
//!    windows) -> that builtin, adopting its layer list.
//! 4. The same layers as a builtin except for max-pool padding/rounding that changes shapes
//!    -> that builtin's family, preprocessing and labels, with the graph's own layers. This is
//!    the ONNX model zoo's bvlcalexnet: converted from Caffe for 224 input, its pool1/pool2 floor
//!    (54 -> 26 -> 12) where Caffe's ceil pooling at 224 gives 27 and 13, and pool5 uses pads
//!    `[0, 0, 1, 1]`; so its intermediate shapes differ from `model::bvlc()` while its weights,
//!    preprocessing and labels are the Caffe ones. We keep the zoo's pooling so our outputs
//!    match ONNX Runtime's on that file.
//! 5. Otherwise `Family::Custom` with torchvision's preprocessing at the graph's input size,
//!    ImageNet labels if there are 1000 outputs, else `class i`.
//!
//! ## Export
//! Opset 13, IR version 8, input `input` `(N, C, H, W)` with a symbolic `N`, output `output`,
//! parameters as float32 initializers named `{layer}.weight` / `{layer}.bias`, Dropout left
//! out (an inference graph), adaptive average pooling as AveragePool when the sizes divide,
//! and the architecture as JSON in `metadata_props["alexnet.arch"]`.

mod decode;
mod export;
mod family;
mod import;
mod layers;
pub mod proto;

pub use export::export;
pub use import::import;

/// The metadata key under which [`export`] stores the architecture as JSON.
pub const ARCH_KEY: &str = "alexnet.arch";
/// Opset and IR version that [`export`] writes.
pub const EXPORT_OPSET: i64 = 13;
pub const EXPORT_IR_VERSION: i64 = 8;

/// Refuse constants (ConstantOfShape) above this many elements rather than allocate them:
/// AlexNet's largest tensor (fc6) has 37.7 M.
pub(super) const MAX_CONST_ELEMS: usize = 1 << 28;

/// Upper bound for sizes read from attributes and the input shape (kernels, strides, pads,
/// groups, LRN size, C/H/W), so that shape arithmetic can never overflow (also on wasm32's
/// 32-bit usize). AlexNet's largest is 224.
pub(super) const MAX_DIM: i64 = 1 << 16;

#[cfg(test)]
mod tests {
    use super::decode::transpose;
    use super::family::pools_equivalent;
    use super::import::name_dropouts;
    use crate::model::{self, Layer, Pads, PoolSpec};
    use crate::shape::Rounding;

    #[test]
    fn dropout_naming_follows_builtins() {
        for arch in [model::bvlc(), model::torchvision(), model::mini()] {
            let mut layers = arch.layers.clone();
            for l in layers.iter_mut() {
                if let Layer::Dropout(d) = l {
                    d.name = "x".into();
                }
            }
            name_dropouts(&mut layers);
            assert_eq!(layers, arch.layers, "{:?}", arch.family);
        }
    }

    #[test]
    fn pool_encodings() {
        // The zoo's pool5: floor with pads [0,0,1,1] on 12x12 == ceil without pads.
        let p = |pads: Pads, rounding| PoolSpec {
            name: "p".into(),
            kernel: [3, 3],
            stride: [2, 2],
            pads,
            rounding,
        };
        let zoo = p(
            Pads {
                top: 0,
                left: 0,
                bottom: 1,
                right: 1,
            },
            Rounding::Floor,
        );
        let ceil = p(Pads::default(), Rounding::Ceil);
        assert!(pools_equivalent(&zoo, &ceil, &[256, 12, 12]));
        assert!(pools_equivalent(&zoo, &ceil, &[256, 13, 13]));
        // 54 -> 26 (floor) vs 27 (ceil): not the same.
        let floor = p(Pads::default(), Rounding::Floor);
        assert!(!pools_equivalent(&floor, &ceil, &[96, 54, 54]));
    }

    #[test]
    fn transpose_is_right() {
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }
}
