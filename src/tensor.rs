//! A plain dense f32 tensor: a shape and a flat row-major buffer. Activations are
//! `(N, C, H, W)` or `(N, F)`; conv weights `(C_out, C_in / groups, KH, KW)`; FC weights
//! `(out, in)` (PyTorch's layout, ONNX Gemm with transB = 1).

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Length {
                what: format!("tensor of shape {shape:?}"),
                len: data.len(),
                want: n,
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// `(N, C, H, W)` of a 4-D activation, or an error naming the layer that needs one.
    pub fn nchw(&self, layer: &str) -> Result<[usize; 4]> {
        match self.shape.as_slice() {
            [n, c, h, w] => Ok([*n, *c, *h, *w]),
            s => Err(Error::Arch(format!(
                "layer {layer:?} needs an (N, C, H, W) input, got {s:?}"
            ))),
        }
    }

    /// Count of NaN and +-Inf values.
    pub fn non_finite(&self) -> usize {
        self.data.iter().filter(|v| !v.is_finite()).count()
    }
}

/// Deterministic PRNG (SplitMix64) used for seeded weights, dropout masks and tests, so that
/// every platform (native, wasm, and later WGSL) can regenerate the same numbers.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.0)
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    pub fn fill_normal(&mut self, data: &mut [f32], std: f32) {
        for v in data {
            *v = self.normal() * std;
        }
    }

    pub fn fill_uniform(&mut self, data: &mut [f32], lo: f32, hi: f32) {
        for v in data {
            *v = lo + (hi - lo) * self.uniform();
        }
    }
}

/// The SplitMix64 finaliser; also the per-element hash behind dropout masks.
pub fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Checks that a flat buffer holds exactly `shape.iter().product()` values.
/// The error names the function and the buffer, e.g. `"conv2d_forward: inp (N, C_in, H, W)"`.
pub(crate) fn check_len(what: &str, len: usize, shape: &[usize]) -> Result<()> {
    let want: usize = shape.iter().product();
    if len != want {
        return Err(Error::Shape {
            what: format!("{what} (flat length {len}, needs {want})"),
            expected: shape.to_vec(),
            got: vec![len],
        });
    }
    Ok(())
}

/// Checks a function's flat buffers: each `(name, len, want)` whose `len` is not `want`
/// is an [`Error::Length`] named `"{func}: {name}"` (the first one found).
pub(crate) fn check_lens(func: &str, lens: &[(&str, usize, usize)]) -> Result<()> {
    match lens.iter().find(|(_, len, want)| len != want) {
        Some(&(what, len, want)) => Err(Error::Length {
            what: format!("{func}: {what}"),
            len,
            want,
        }),
        None => Ok(()),
    }
}
