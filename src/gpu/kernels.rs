//! The kernel registry: every compute kernel is one `.wgsl` file in `src/gpu/shaders/`,
//! compiled into the binary with `include_str!`, named by a [`Kernel`] and compiled once
//! into a pipeline that [`GpuContext`](super::GpuContext) caches by that key.
//!
//! Adding a kernel (e.g. a backward pass): write `shaders/<name>.wgsl` with the usual header
//! (what one invocation computes, bindings, dispatch) and an entry point `main`, with its
//! uniform parameters at binding 0 and the storage buffers at bindings 1, 2, ... in order;
//! declare the parameters' struct in `params.rs` (and in WGSL: in the file, or in a shared
//! piece of `shaders/lib/` the file includes); add a variant here (to `ALL`, `file`,
//! `own_source` and `params`); build its [`Dispatch`](super::Dispatch) in `ops.rs`.
//! `tests/shaders_naga.rs` validates every composed kernel, checks its parameters' layout
//! against `params.rs` and this list against the directory.
//!
//! Composition: the pieces several kernels share (the elementwise grid and its index
//! decodes, the parameter structs of a layer family, the workgroup tree reduction, the
//! softmax row, the window bounds of the gathers, the tiled GEMM core with its staging and
//! store, the tiled LRN block walk) live once in `shaders/lib/`, and the sizes host and
//! shaders share are written as WGSL constants from `params.rs`, so neither is copied
//! between files. A piece names the functions or buffers its including kernel provides in
//! its header (e.g. `store_c` for `gemm_tile.wgsl`); WGSL resolves module-scope names in any
//! order, so a piece may use what the kernel declares after it. A kernel lists every piece
//! it uses, including those another piece needs (`reduce.wgsl` under `softmax.wgsl`).

use super::params::*;
use crate::error::{Error, Result};

/// The shared pieces a kernel may include, by the name it uses.
pub const LIB: [(&str, &str); 10] = [
    ("lib/grid.wgsl", include_str!("shaders/lib/grid.wgsl")),
    ("lib/conv.wgsl", include_str!("shaders/lib/conv.wgsl")),
    (
        "lib/gemm_tile.wgsl",
        include_str!("shaders/lib/gemm_tile.wgsl"),
    ),
    ("lib/pool.wgsl", include_str!("shaders/lib/pool.wgsl")),
    ("lib/lrn.wgsl", include_str!("shaders/lib/lrn.wgsl")),
    ("lib/linear.wgsl", include_str!("shaders/lib/linear.wgsl")),
    ("lib/softmax.wgsl", include_str!("shaders/lib/softmax.wgsl")),
    ("lib/reduce.wgsl", include_str!("shaders/lib/reduce.wgsl")),
    ("lib/window.wgsl", include_str!("shaders/lib/window.wgsl")),
    (
        "lib/lrn_tile.wgsl",
        include_str!("shaders/lib/lrn_tile.wgsl"),
    ),
];

const INCLUDE: &str = "// #include ";

/// The element type of a storage buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    F32,
    U32,
}

/// A storage buffer a kernel binds: its name in the shader, whether the kernel writes it,
/// and its element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub name: &'static str,
    pub write: bool,
    pub elem: Elem,
}

const fn buffer(name: &'static str, write: bool, elem: Elem) -> Buffer {
    Buffer { name, write, elem }
}
const fn read(name: &'static str) -> Buffer {
    buffer(name, false, Elem::F32)
}
const fn write(name: &'static str) -> Buffer {
    buffer(name, true, Elem::F32)
}
const fn read_u32(name: &'static str) -> Buffer {
    buffer(name, false, Elem::U32)
}
const fn write_u32(name: &'static str) -> Buffer {
    buffer(name, true, Elem::U32)
}

/// `own` (the text of `kernel`'s file) as the pipeline compiles it: the shared constants,
/// each piece of `shaders/lib/` it names in a `// #include lib/<name>.wgsl` line (once, in
/// the order named), the bindings (its parameters at 0, `kernel.buffers()` at 1, 2, ...),
/// then `own`.
pub fn compose(own: &str, kernel: Kernel) -> Result<String> {
    let mut out = String::from("// shared constants (gpu::params)\n");
    for (name, v) in SHARED_CONSTS {
        out.push_str(&format!("const {name}: u32 = {v}u;\n"));
    }
    let mut seen: Vec<&str> = Vec::new();
    for line in own.lines() {
        let Some(name) = line.strip_prefix(INCLUDE) else {
            continue;
        };
        let name = name.trim();
        if seen.contains(&name) {
            continue;
        }
        let (_, text) = LIB.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            Error::Gpu(format!(
                "a kernel includes {name:?}, which is not in shaders/lib"
            ))
        })?;
        seen.push(name);
        out.push_str(text);
        out.push('\n');
    }
    out.push_str(&format!(
        "// bindings (gpu::kernels::Kernel::buffers)\n@group(0) @binding(0) var<uniform> p: {};\n",
        kernel.params().name
    ));
    for (i, b) in kernel.buffers().iter().enumerate() {
        let access = if b.write { "read_write" } else { "read" };
        let elem = match b.elem {
            Elem::F32 => "f32",
            Elem::U32 => "u32",
        };
        out.push_str(&format!(
            "@group(0) @binding({}) var<storage, {access}> {}: array<{elem}>;\n",
            i + 1,
            b.name
        ));
    }
    out.push_str(own);
    Ok(out)
}

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
    /// `lrn_tiled.wgsl`: LRN with each block's channel windows in workgroup memory.
    LrnTiled,
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
    /// `conv_bwd_data.wgsl`: conv backward with respect to the input, a gather: one invocation per input element.
    ConvBwdData,
    /// `conv_bwd_weight.wgsl`: conv backward with respect to the weight: one invocation per weight element.
    ConvBwdWeight,
    /// `conv_bwd_data_tiled.wgsl`: conv backward with respect to the input as an implicit
    /// GEMM with 64x64 tiles in workgroup memory.
    ConvBwdDataTiled,
    /// `conv_bwd_weight_tiled.wgsl`: conv backward with respect to the weight as a tiled
    /// GEMM, split along the N*OH*OW reduction.
    ConvBwdWeightTiled,
    /// `sum_splits.wgsl`: adds the partial results of a split-K GEMM.
    SumSplits,
    /// `bias_bwd.wgsl`: bias gradient (conv and fully connected): one invocation per channel.
    BiasBwd,
    /// `relu_bwd.wgsl`: `dx = x > 0 ? dout : 0`.
    ReluBwd,
    /// `lrn_bwd.wgsl`: LRN backward over the reverse window, using the saved scale.
    LrnBwd,
    /// `lrn_bwd_tiled.wgsl`: LRN backward with the reverse window's terms in workgroup
    /// memory.
    LrnBwdTiled,
    /// `maxpool_bwd.wgsl`: max-pool backward, a gather over overlapping windows using the saved argmax.
    MaxPoolBwd,
    /// `avgpool_bwd.wgsl`: adaptive average pool backward, a gather.
    AvgPoolBwd,
    /// `linear_bwd_data.wgsl`: fully connected `dx = dy W`, one weight row block per dispatch (accumulating).
    LinearBwdData,
    /// `linear_bwd_weight.wgsl`: fully connected `dW = dy^T x` for one weight row block.
    LinearBwdWeight,
    /// `softmax_xent.wgsl`: fused softmax + cross-entropy: per-row loss and `dlogits = (p - onehot) / N`.
    SoftmaxXent,
    /// `sgd.wgsl`: SGD with momentum and weight decay in the paper's form.
    Sgd,
    /// `fill.wgsl`: sets a buffer to one value.
    Fill,
}

impl Kernel {
    /// Every kernel, compiled when a [`GpuContext`](super::GpuContext) is created.
    pub const ALL: [Kernel; 27] = [
        Kernel::Relu,
        Kernel::ConvNaive,
        Kernel::ConvTiled,
        Kernel::Lrn,
        Kernel::LrnTiled,
        Kernel::MaxPool,
        Kernel::AvgPool,
        Kernel::LinearGemm,
        Kernel::LinearGemv,
        Kernel::Dropout,
        Kernel::Softmax,
        Kernel::ConvBwdData,
        Kernel::ConvBwdWeight,
        Kernel::ConvBwdDataTiled,
        Kernel::ConvBwdWeightTiled,
        Kernel::SumSplits,
        Kernel::BiasBwd,
        Kernel::ReluBwd,
        Kernel::LrnBwd,
        Kernel::LrnBwdTiled,
        Kernel::MaxPoolBwd,
        Kernel::AvgPoolBwd,
        Kernel::LinearBwdData,
        Kernel::LinearBwdWeight,
        Kernel::SoftmaxXent,
        Kernel::Sgd,
        Kernel::Fill,
    ];

    /// The shader's file name in `src/gpu/shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::Relu => "relu.wgsl",
            Kernel::ConvNaive => "conv_naive.wgsl",
            Kernel::ConvTiled => "conv_tiled.wgsl",
            Kernel::Lrn => "lrn.wgsl",
            Kernel::LrnTiled => "lrn_tiled.wgsl",
            Kernel::MaxPool => "maxpool.wgsl",
            Kernel::AvgPool => "avgpool.wgsl",
            Kernel::LinearGemm => "linear_gemm.wgsl",
            Kernel::LinearGemv => "linear_gemv.wgsl",
            Kernel::Dropout => "dropout.wgsl",
            Kernel::Softmax => "softmax.wgsl",
            Kernel::ConvBwdData => "conv_bwd_data.wgsl",
            Kernel::ConvBwdWeight => "conv_bwd_weight.wgsl",
            Kernel::ConvBwdDataTiled => "conv_bwd_data_tiled.wgsl",
            Kernel::ConvBwdWeightTiled => "conv_bwd_weight_tiled.wgsl",
            Kernel::SumSplits => "sum_splits.wgsl",
            Kernel::BiasBwd => "bias_bwd.wgsl",
            Kernel::ReluBwd => "relu_bwd.wgsl",
            Kernel::LrnBwd => "lrn_bwd.wgsl",
            Kernel::LrnBwdTiled => "lrn_bwd_tiled.wgsl",
            Kernel::MaxPoolBwd => "maxpool_bwd.wgsl",
            Kernel::AvgPoolBwd => "avgpool_bwd.wgsl",
            Kernel::LinearBwdData => "linear_bwd_data.wgsl",
            Kernel::LinearBwdWeight => "linear_bwd_weight.wgsl",
            Kernel::SoftmaxXent => "softmax_xent.wgsl",
            Kernel::Sgd => "sgd.wgsl",
            Kernel::Fill => "fill.wgsl",
        }
    }

    /// The WGSL the pipeline compiles (see [`compose`]).
    pub fn source(self) -> Result<String> {
        compose(self.own_source(), self)
    }

    /// The kernel's own file (compiled into the binary), before composition.
    pub fn own_source(self) -> &'static str {
        match self {
            Kernel::Relu => include_str!("shaders/relu.wgsl"),
            Kernel::ConvNaive => include_str!("shaders/conv_naive.wgsl"),
            Kernel::ConvTiled => include_str!("shaders/conv_tiled.wgsl"),
            Kernel::Lrn => include_str!("shaders/lrn.wgsl"),
            Kernel::LrnTiled => include_str!("shaders/lrn_tiled.wgsl"),
            Kernel::MaxPool => include_str!("shaders/maxpool.wgsl"),
            Kernel::AvgPool => include_str!("shaders/avgpool.wgsl"),
            Kernel::LinearGemm => include_str!("shaders/linear_gemm.wgsl"),
            Kernel::LinearGemv => include_str!("shaders/linear_gemv.wgsl"),
            Kernel::Dropout => include_str!("shaders/dropout.wgsl"),
            Kernel::Softmax => include_str!("shaders/softmax.wgsl"),
            Kernel::ConvBwdData => include_str!("shaders/conv_bwd_data.wgsl"),
            Kernel::ConvBwdWeight => include_str!("shaders/conv_bwd_weight.wgsl"),
            Kernel::ConvBwdDataTiled => include_str!("shaders/conv_bwd_data_tiled.wgsl"),
            Kernel::ConvBwdWeightTiled => include_str!("shaders/conv_bwd_weight_tiled.wgsl"),
            Kernel::SumSplits => include_str!("shaders/sum_splits.wgsl"),
            Kernel::BiasBwd => include_str!("shaders/bias_bwd.wgsl"),
            Kernel::ReluBwd => include_str!("shaders/relu_bwd.wgsl"),
            Kernel::LrnBwd => include_str!("shaders/lrn_bwd.wgsl"),
            Kernel::LrnBwdTiled => include_str!("shaders/lrn_bwd_tiled.wgsl"),
            Kernel::MaxPoolBwd => include_str!("shaders/maxpool_bwd.wgsl"),
            Kernel::AvgPoolBwd => include_str!("shaders/avgpool_bwd.wgsl"),
            Kernel::LinearBwdData => include_str!("shaders/linear_bwd_data.wgsl"),
            Kernel::LinearBwdWeight => include_str!("shaders/linear_bwd_weight.wgsl"),
            Kernel::SoftmaxXent => include_str!("shaders/softmax_xent.wgsl"),
            Kernel::Sgd => include_str!("shaders/sgd.wgsl"),
            Kernel::Fill => include_str!("shaders/fill.wgsl"),
        }
    }

    /// The layout of the uniform parameters at binding 0 (`gpu::params`).
    pub fn params(self) -> Layout {
        match self {
            Kernel::Relu => CountParams::LAYOUT,
            Kernel::ConvNaive => ConvParams::LAYOUT,
            Kernel::ConvTiled => ConvParams::LAYOUT,
            Kernel::Lrn => LrnParams::LAYOUT,
            Kernel::LrnTiled => LrnParams::LAYOUT,
            Kernel::MaxPool => PoolParams::LAYOUT,
            Kernel::AvgPool => AvgPoolParams::LAYOUT,
            Kernel::LinearGemm => LinearParams::LAYOUT,
            Kernel::LinearGemv => LinearParams::LAYOUT,
            Kernel::Dropout => DropoutParams::LAYOUT,
            Kernel::Softmax => SoftmaxParams::LAYOUT,
            Kernel::ConvBwdData => ConvParams::LAYOUT,
            Kernel::ConvBwdWeight => ConvParams::LAYOUT,
            Kernel::ConvBwdDataTiled => ConvParams::LAYOUT,
            Kernel::ConvBwdWeightTiled => ConvParams::LAYOUT,
            Kernel::SumSplits => SumSplitsParams::LAYOUT,
            Kernel::BiasBwd => BiasBwdParams::LAYOUT,
            Kernel::ReluBwd => CountParams::LAYOUT,
            Kernel::LrnBwd => LrnParams::LAYOUT,
            Kernel::LrnBwdTiled => LrnParams::LAYOUT,
            Kernel::MaxPoolBwd => PoolParams::LAYOUT,
            Kernel::AvgPoolBwd => AvgPoolParams::LAYOUT,
            Kernel::LinearBwdData => LinearBwdParams::LAYOUT,
            Kernel::LinearBwdWeight => LinearBwdParams::LAYOUT,
            Kernel::SoftmaxXent => SoftmaxParams::LAYOUT,
            Kernel::Sgd => SgdParams::LAYOUT,
            Kernel::Fill => FillParams::LAYOUT,
        }
    }

    /// The storage buffers the kernel binds at 1, 2, ... in order (the uniform parameters
    /// are at 0): `GpuContext::dispatch` takes its buffers in this order, and the composed
    /// shader declares them from this list.
    pub fn buffers(self) -> &'static [Buffer] {
        match self {
            Kernel::Relu => const { &[read("x"), write("y")] },
            Kernel::ConvNaive => const { &[read("x"), read("wt"), read("bias"), write("out")] },
            Kernel::ConvTiled => const { &[read("x"), read("wt"), read("bias"), write("out")] },
            Kernel::Lrn => const { &[read("x"), write("out"), write("scale")] },
            Kernel::LrnTiled => const { &[read("x"), write("out"), write("scale")] },
            Kernel::MaxPool => const { &[read("x"), write("out"), write_u32("argmax")] },
            Kernel::AvgPool => const { &[read("x"), write("out")] },
            Kernel::LinearGemm => const { &[read("x"), read("wt"), read("bias"), write("y")] },
            Kernel::LinearGemv => const { &[read("x"), read("wt"), read("bias"), write("y")] },
            Kernel::Dropout => const { &[read("x"), write("y")] },
            Kernel::Softmax => const { &[read("logits"), write("y")] },
            Kernel::ConvBwdData => const { &[read("dout"), read("wt"), write("dx")] },
            Kernel::ConvBwdWeight => const { &[read("dout"), read("x"), write("dw")] },
            Kernel::ConvBwdDataTiled => const { &[read("dout"), read("wt"), write("dx")] },
            Kernel::ConvBwdWeightTiled => const { &[read("dout"), read("x"), write("part")] },
            Kernel::SumSplits => const { &[read("part"), write("out")] },
            Kernel::BiasBwd => const { &[read("dout"), write("db")] },
            Kernel::ReluBwd => const { &[read("dout"), read("x"), write("dx")] },
            Kernel::LrnBwd => {
                const {
                    &[
                        read("dout"),
                        read("x"),
                        read("out"),
                        read("scale"),
                        write("dx"),
                    ]
                }
            }
            Kernel::LrnBwdTiled => {
                const {
                    &[
                        read("dout"),
                        read("x"),
                        read("out"),
                        read("scale"),
                        write("dx"),
                    ]
                }
            }
            Kernel::MaxPoolBwd => const { &[read("dout"), read_u32("argmax"), write("dx")] },
            Kernel::AvgPoolBwd => const { &[read("dout"), write("dx")] },
            Kernel::LinearBwdData => const { &[read("dy"), read("wb"), write("dx")] },
            Kernel::LinearBwdWeight => const { &[read("dy"), read("x"), write("dwb")] },
            Kernel::SoftmaxXent => {
                const {
                    &[
                        read("logits"),
                        read_u32("labels"),
                        write("losses"),
                        write("dz"),
                    ]
                }
            }
            Kernel::Sgd => const { &[write("w"), write("v"), read("g")] },
            Kernel::Fill => const { &[write("buf")] },
        }
    }

    /// Every shader's entry point.
    pub const ENTRY: &'static str = "main";
}
