//! The kernel registry: every compute kernel is one `.wgsl` file in `src/gpu/shaders/`,
//! compiled into the binary with `include_str!`, named by a [`Kernel`] and compiled once
//! into a pipeline that [`GpuContext`](super::GpuContext) caches by that key.
//!
//! Adding a kernel (e.g. a backward pass): write `shaders/<name>.wgsl` with the usual header
//! (what one invocation computes, bindings, dispatch) and an entry point `main`, with the
//! uniform `Params` at binding 0 and the storage buffers at bindings 1, 2, ... in order; add a
//! variant here (to `ALL`, `file` and `source`); build its [`Dispatch`](super::Dispatch) in
//! `ops.rs`. `tests/shaders_naga.rs` validates the new file and checks this list against the
//! directory.

/// A compute kernel. Each has exactly one `.wgsl` file and one pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// `relu.wgsl`: `y = max(x, 0)`.
    Relu,
    /// `conv_naive.wgsl`: one invocation per output element; the fallback and oracle.
    ConvNaive,
    /// `conv_tiled.wgsl`: implicit GEMM with 64x64 tiles in workgroup memory, groups as the
    /// dispatch's z.
    ConvTiled,
    /// `lrn.wgsl`: local response normalisation across channels, saves the scale.
    Lrn,
    /// `maxpool.wgsl`: max pooling, saves the argmax (u32).
    MaxPool,
    /// `avgpool.wgsl`: adaptive average pooling.
    AvgPool,
    /// `linear_gemm.wgsl`: fully connected, tiled GEMM (batch > 1).
    LinearGemm,
    /// `linear_gemv.wgsl`: fully connected, one workgroup per output (batch 1).
    LinearGemv,
    /// `dropout.wgsl`: training-mode inverted dropout with the CPU's pcg hash mask.
    Dropout,
    /// `softmax.wgsl`: row-wise stable softmax.
    Softmax,
}

impl Kernel {
    /// Every kernel, compiled when a [`GpuContext`](super::GpuContext) is created.
    pub const ALL: [Kernel; 10] = [
        Kernel::Relu,
        Kernel::ConvNaive,
        Kernel::ConvTiled,
        Kernel::Lrn,
        Kernel::MaxPool,
        Kernel::AvgPool,
        Kernel::LinearGemm,
        Kernel::LinearGemv,
        Kernel::Dropout,
        Kernel::Softmax,
    ];

    /// The shader's file name in `src/gpu/shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::Relu => "relu.wgsl",
            Kernel::ConvNaive => "conv_naive.wgsl",
            Kernel::ConvTiled => "conv_tiled.wgsl",
            Kernel::Lrn => "lrn.wgsl",
            Kernel::MaxPool => "maxpool.wgsl",
            Kernel::AvgPool => "avgpool.wgsl",
            Kernel::LinearGemm => "linear_gemm.wgsl",
            Kernel::LinearGemv => "linear_gemv.wgsl",
            Kernel::Dropout => "dropout.wgsl",
            Kernel::Softmax => "softmax.wgsl",
        }
    }

    /// The WGSL source (compiled into the binary).
    pub fn source(self) -> &'static str {
        match self {
            Kernel::Relu => include_str!("shaders/relu.wgsl"),
            Kernel::ConvNaive => include_str!("shaders/conv_naive.wgsl"),
            Kernel::ConvTiled => include_str!("shaders/conv_tiled.wgsl"),
            Kernel::Lrn => include_str!("shaders/lrn.wgsl"),
            Kernel::MaxPool => include_str!("shaders/maxpool.wgsl"),
            Kernel::AvgPool => include_str!("shaders/avgpool.wgsl"),
            Kernel::LinearGemm => include_str!("shaders/linear_gemm.wgsl"),
            Kernel::LinearGemv => include_str!("shaders/linear_gemv.wgsl"),
            Kernel::Dropout => include_str!("shaders/dropout.wgsl"),
            Kernel::Softmax => include_str!("shaders/softmax.wgsl"),
        }
    }

    /// Every shader's entry point.
    pub const ENTRY: &'static str = "main";
}
