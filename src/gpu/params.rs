//! Every kernel's uniform parameters as a typed `#[repr(C)]` struct whose bytes are the
//! WGSL struct's (u32 and f32 fields only, so the layout is the field order at 4-byte
//! steps). `tests/shaders_naga.rs` parses each kernel with naga and checks that the struct
//! bound at binding 0 has exactly these fields, offsets and types, so host and shader
//! cannot drift apart; `GpuContext::dispatch` refuses a struct that is not its kernel's.
//!
//! The sizes the host and the shaders share (workgroup width, GEMM tile sizes, LRN blocks)
//! are defined once here and written into every composed shader as WGSL constants
//! (`kernels::prelude`).

use crate::error::{Error, Result};
use crate::model::{AvgPoolGeom, ConvGeom, LrnGeom, PoolGeom};

/// Invocations per workgroup of the elementwise kernels (and the 16 x 16 tiled ones).
pub const WG: u32 = 256;
/// Rows and columns of one workgroup's output tile in the tiled GEMM kernels (conv forward
/// and backward, fully connected); 16 x 16 invocations own 4 x 4 values each.
pub const TILE: u32 = 64;
/// Depth of one step along the GEMM's reduction in the tiled kernels.
pub const TILE_K: u32 = 16;
/// Pixels of one block of the tiled LRN kernels.
pub const LRN_PIX: u32 = 64;
/// Channels of one block of the tiled LRN kernels (plus a halo of `size - 1` channels).
pub const LRN_CHANNELS: u32 = 32;
/// Channel rows of workgroup memory in the tiled LRN kernels: the block and its halo.
pub const LRN_ROWS: u32 = 64;

/// The WGSL constants every composed shader starts with.
pub const SHARED_CONSTS: [(&str, u32); 6] = [
    ("WG", WG),
    ("TILE", TILE),
    ("TILE_K", TILE_K),
    ("LRN_PIX", LRN_PIX),
    ("LRN_CHANNELS", LRN_CHANNELS),
    ("LRN_ROWS", LRN_ROWS),
];

/// A WGSL scalar type of a uniform field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    U32,
    F32,
}

/// One field of a kernel's uniform struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// Byte offset in the struct.
    pub offset: usize,
    pub ty: Scalar,
}

/// A uniform struct's host layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The struct's name in WGSL.
    pub name: &'static str,
    pub fields: &'static [Field],
    /// `size_of` the struct.
    pub size: usize,
}

/// A kernel's uniform parameters on the host.
pub trait KernelParams: bytemuck::Pod {
    const LAYOUT: Layout;
}

/// The Rust types a uniform field may have.
pub trait WgslScalar {
    const SCALAR: Scalar;
}
impl WgslScalar for u32 {
    const SCALAR: Scalar = Scalar::U32;
}
impl WgslScalar for f32 {
    const SCALAR: Scalar = Scalar::F32;
}

/// Declares a uniform struct: `#[repr(C)]`, bytemuck's `Pod`, and its [`Layout`].
macro_rules! kernel_params {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident { $($field:ident: $ty:ty),* $(,)? }
    )*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name { $(pub $field: $ty),* }

        impl KernelParams for $name {
            const LAYOUT: Layout = Layout {
                name: stringify!($name),
                fields: &[$(Field {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($name, $field),
                    ty: <$ty as WgslScalar>::SCALAR,
                }),*],
                size: std::mem::size_of::<$name>(),
            };
        }
    )*};
}

kernel_params! {
    /// Every convolution kernel (`shaders/lib/conv.wgsl`): the geometry, then what some
    /// kernels add: `groups`; the forward's `co_base` (first output channel written) and
    /// `relu` flag; the tiled weight gradient's split of its reduction.
    pub struct ConvParams {
        n: u32, c_in: u32, h: u32, w: u32, c_out: u32, oh: u32, ow: u32, kh: u32, kw: u32,
        sh: u32, sw: u32, pad_top: u32, pad_left: u32, cin_g: u32, cout_g: u32, groups: u32,
        co_base: u32, relu: u32, splits: u32, cols_per_split: u32,
    }

    /// Max pool forward and backward (`shaders/lib/pool.wgsl`); `count` = N*C*OH*OW
    /// (forward) or N*C*H*W (backward).
    pub struct PoolParams {
        count: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32,
        pad_top: u32, pad_left: u32,
    }

    /// Adaptive average pool forward and backward (`shaders/lib/pool.wgsl`).
    pub struct AvgPoolParams { count: u32, h: u32, w: u32, oh: u32, ow: u32 }

    /// LRN forward and backward, naive and tiled (`shaders/lib/lrn.wgsl`).
    pub struct LrnParams {
        count: u32, c: u32, hw: u32, size: u32, alpha_eff: f32, beta: f32, k: f32,
    }

    /// Fully connected forward over one weight row block (`shaders/lib/linear.wgsl`).
    pub struct LinearParams {
        batch: u32, in_f: u32, out_total: u32, row0: u32, rows: u32, relu: u32,
    }

    /// Fully connected backward over one weight row block (`shaders/lib/linear.wgsl`);
    /// `accumulate` adds to `dx` (the blocks after the first).
    pub struct LinearBwdParams {
        n: u32, in_f: u32, out_f: u32, row0: u32, rows: u32, accumulate: u32,
    }

    /// Elementwise kernels that need only their length (`shaders/lib/grid.wgsl`).
    pub struct CountParams { count: u32 }

    /// `dropout.wgsl`.
    pub struct DropoutParams { count: u32, seed: u32, p: f32, scale: f32 }

    /// `fill.wgsl`.
    pub struct FillParams { count: u32, value: f32 }

    /// `sgd.wgsl`.
    pub struct SgdParams { count: u32, lr: f32, momentum: f32, wd: f32 }

    /// Softmax and the fused softmax cross-entropy (`shaders/lib/softmax.wgsl`); `inv_n`
    /// (1 / rows) only in the loss.
    pub struct SoftmaxParams { rows: u32, k: u32, inv_n: f32 }

    /// `sum_splits.wgsl`.
    pub struct SumSplitsParams { count: u32, splits: u32 }

    /// `bias_bwd.wgsl`.
    pub struct BiasBwdParams { n: u32, c: u32, inner: u32 }
}

/// `v` as a u32 kernel parameter.
pub fn u32_of(v: usize) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::Gpu(format!("kernel parameter {v} does not fit in 32 bits")))
}

/// A uniform buffer's bytes: the struct's, padded to a multiple of 16.
pub fn uniform_bytes<P: KernelParams>(p: &P) -> Vec<u8> {
    let mut b = bytemuck::bytes_of(p).to_vec();
    b.resize(b.len().div_ceil(16).max(1) * 16, 0);
    b
}

impl ConvParams {
    /// The geometry fields of `g`; `groups` included, the kernel-specific ones 0.
    pub fn new(g: &ConvGeom) -> Result<ConvParams> {
        Ok(ConvParams {
            n: u32_of(g.n)?,
            c_in: u32_of(g.c_in)?,
            h: u32_of(g.h)?,
            w: u32_of(g.w)?,
            c_out: u32_of(g.c_out)?,
            oh: u32_of(g.oh)?,
            ow: u32_of(g.ow)?,
            kh: u32_of(g.kh)?,
            kw: u32_of(g.kw)?,
            sh: u32_of(g.sh)?,
            sw: u32_of(g.sw)?,
            pad_top: u32_of(g.pads.top)?,
            pad_left: u32_of(g.pads.left)?,
            cin_g: u32_of(g.cin_g())?,
            cout_g: u32_of(g.cout_g())?,
            groups: u32_of(g.groups)?,
            ..ConvParams::default()
        })
    }
}

impl PoolParams {
    pub fn new(count: usize, g: &PoolGeom) -> Result<PoolParams> {
        Ok(PoolParams {
            count: u32_of(count)?,
            h: u32_of(g.h)?,
            w: u32_of(g.w)?,
            oh: u32_of(g.oh)?,
            ow: u32_of(g.ow)?,
            kh: u32_of(g.kh)?,
            kw: u32_of(g.kw)?,
            sh: u32_of(g.sh)?,
            sw: u32_of(g.sw)?,
            pad_top: u32_of(g.pad_top)?,
            pad_left: u32_of(g.pad_left)?,
        })
    }
}

impl AvgPoolParams {
    pub fn new(count: usize, g: &AvgPoolGeom) -> Result<AvgPoolParams> {
        Ok(AvgPoolParams {
            count: u32_of(count)?,
            h: u32_of(g.h)?,
            w: u32_of(g.w)?,
            oh: u32_of(g.oh)?,
            ow: u32_of(g.ow)?,
        })
    }
}

impl LrnParams {
    pub fn new(count: usize, g: &LrnGeom) -> Result<LrnParams> {
        Ok(LrnParams {
            count: u32_of(count)?,
            c: u32_of(g.c)?,
            hw: u32_of(g.hw)?,
            size: u32_of(g.size)?,
            alpha_eff: g.alpha_eff,
            beta: g.beta,
            k: g.k,
        })
    }
}

impl CountParams {
    pub fn new(count: usize) -> Result<CountParams> {
        Ok(CountParams {
            count: u32_of(count)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_the_field_order_at_four_byte_steps() {
        let l = ConvParams::LAYOUT;
        assert_eq!(l.size, 80);
        for (i, f) in l.fields.iter().enumerate() {
            assert_eq!(f.offset, 4 * i, "{}", f.name);
        }
        assert_eq!(LrnParams::LAYOUT.fields[4].ty, Scalar::F32);
        assert_eq!(uniform_bytes(&CountParams { count: 7 }).len(), 16);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_size_over_32_bits_is_an_error() {
        assert!(matches!(u32_of(usize::MAX), Err(Error::Gpu(_))));
    }
}
