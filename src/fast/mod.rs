//! The fast CPU backend: the same network as `net::Model`'s reference forward (eval mode),
//! fast. It is the fallback when a browser has no WebGPU and the native path when there is
//! no adapter. Tested layer by layer and end to end against `crate::cpu` in
//! `tests/fast_backend.rs`.
//!
//! # Design
//! - **Convolution = im2col + GEMM** (`conv`), one GEMM per (image, group) written straight
//!   into the group's output rows; bias and a following ReLU are applied in one pass over
//!   the GEMM's output while it is still in cache.
//! - **GEMM = `matrixmultiply`** (bluss; pure Rust, one dependency, builds for
//!   wasm32-unknown-unknown): packed panels, cache blocking and micro-kernels selected at
//!   run time natively (AVX, FMA, AVX-512, NEON), a portable kernel that LLVM vectorises to
//!   SIMD128 on wasm with `-C target-feature=+simd128`. A hand-written blocked GEMM would
//!   duplicate that work and, without runtime feature detection, stay at SSE2 natively.
//!   Its own threading (`thread-tree`) is off: we split work ourselves (below), which also
//!   keeps the wasm build thread-free.
//! - **Fully connected**: batch <= 4 streams each weight row once (`gemm::gemv_rows`; fc6
//!   is 151 MB and memory bound), larger batches are one GEMM against `W^T` as a strided
//!   view.
//! - **LRN** keeps a running sum of squares over channels (O(1) per element); pools work
//!   plane by plane; dropout (eval) and flatten are relabels; softmax sums in f64.
//! - **Threads** (native only): `std::thread::scope` over
//!   `available_parallelism()` threads: images (conv, LRN with N >= 2), planes (pools),
//!   blocks of output rows or columns (a GEMM at N = 1), output features (GEMV). wasm32 runs
//!   on one thread (no `SharedArrayBuffer` assumed).
//! - **Memory**: the im2col buffers live in a `Workspace`, sized once for the model at
//!   batch 1 by `FastCpu::new`, grown (never shrunk) when a larger batch needs more.
//! - **Backward** is not here: training uses the reference `Model::backward`.
//!
//! # Numerics
//! f32 accumulation in a blocked order (the reference accumulates conv and FC in f64), so
//! results differ from the reference by rounding: ~1e-6 of the largest output for K up to
//! ~10k terms. Pools are bit-identical; LRN differs by a few ulps (running sum, sqrt form of
//! `^-0.75`).

pub mod conv;
pub mod gemm;
pub mod linear;
pub mod lrn;
pub mod pool;

pub use conv::conv2d_forward;
pub use linear::linear_forward;
pub use lrn::lrn_forward;
pub use pool::{adaptive_avgpool_forward, maxpool_forward, softmax_forward};

use crate::cpu;
use crate::error::{Error, Result};
use crate::model::Layer;
use crate::net::Model;
use crate::tensor::Tensor;
use std::thread;

/// Threads the platform offers: `available_parallelism()` natively, 1 on wasm32.
pub fn default_threads() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// Scratch memory and the thread count, shared by the layer functions of this module.
#[derive(Debug)]
pub struct Workspace {
    threads: usize,
    cols: Vec<Vec<f32>>,
}

impl Workspace {
    /// A workspace using `threads` threads (forced to 1 on wasm32, at least 1 anywhere).
    pub fn new(threads: usize) -> Workspace {
        let threads = if cfg!(target_arch = "wasm32") {
            1
        } else {
            threads.max(1)
        };
        Workspace {
            threads,
            cols: Vec::new(),
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Floats currently reserved for im2col buffers.
    pub fn scratch_len(&self) -> usize {
        self.cols.iter().map(Vec::len).sum()
    }

    /// `count` im2col buffers of at least `len` floats each (grown, never shrunk).
    pub(crate) fn cols(&mut self, count: usize, len: usize) -> &mut [Vec<f32>] {
        if self.cols.len() < count {
            self.cols.resize_with(count, Vec::new);
        }
        for c in &mut self.cols[..count] {
            if c.len() < len {
                c.resize(len, 0.0);
            }
        }
        &mut self.cols[..count]
    }
}

/// Applies `f(in_plane, out_plane)` to every plane of `inp` (`in_unit` floats each) and the
/// matching plane of `out` (`out_unit` floats), planes split across `threads`.
pub(crate) fn par_planes<F>(
    threads: usize,
    inp: &[f32],
    in_unit: usize,
    out: &mut [f32],
    out_unit: usize,
    f: F,
) where
    F: Fn(&[f32], &mut [f32]) + Sync,
{
    if in_unit == 0 || out_unit == 0 {
        return;
    }
    let planes = out.len() / out_unit;
    let per = planes.div_ceil(threads.max(1)).max(1);
    let run = |xs: &[f32], ys: &mut [f32]| {
        for (x, y) in xs.chunks_exact(in_unit).zip(ys.chunks_exact_mut(out_unit)) {
            f(x, y);
        }
    };
    // Small layers are not worth a thread each.
    if threads <= 1 || planes < 2 || inp.len() < (1 << 16) {
        run(inp, out);
        return;
    }
    thread::scope(|s| {
        for (xs, ys) in inp
            .chunks(per * in_unit)
            .zip(out.chunks_mut(per * out_unit))
        {
            let run = &run;
            s.spawn(move || run(xs, ys));
        }
    });
}

/// The fast backend bound to a model: eval-mode forward with the same contract as
/// `Model::forward_all` / `forward` / `forward_to`.
#[derive(Debug)]
pub struct FastCpu<'m> {
    model: &'m Model,
    ws: Workspace,
}

impl<'m> FastCpu<'m> {
    /// Binds `model` with `default_threads()` threads and reserves the im2col scratch for
    /// batch 1.
    pub fn new(model: &'m Model) -> Result<FastCpu<'m>> {
        FastCpu::with_threads(model, default_threads())
    }

    /// As `new`, with an explicit thread count (1 = single-threaded, as on wasm).
    pub fn with_threads(model: &'m Model, threads: usize) -> Result<FastCpu<'m>> {
        model.arch.validate()?;
        let mut ws = Workspace::new(threads);
        let shapes = model.arch.shapes()?;
        let mut need = 0;
        let mut input = model.arch.input.to_vec();
        for (layer, out) in model.arch.layers.iter().zip(&shapes) {
            if let (Layer::Conv(spec), [_, h, w]) = (layer, input.as_slice()) {
                need = need.max(conv::col_len(&cpu::ConvGeom::new(spec, 1, *h, *w)?));
            }
            input = out.clone();
        }
        ws.cols(1, need);
        Ok(FastCpu { model, ws })
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// Every layer's output, in layer order, each with the batch dimension.
    pub fn forward_all(&mut self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.run(x, self.model.arch.layers.len(), true)
    }

    /// Inference: the last layer's output.
    pub fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let mut outs = self.run(x, self.model.arch.layers.len(), false)?;
        outs.pop()
            .ok_or_else(|| Error::Other("forward: the model has no layers".into()))
    }

    /// Inference up to and including `layer` (only that prefix is computed).
    pub fn forward_to(&mut self, x: &Tensor, layer: &str) -> Result<Tensor> {
        let idx = self.model.arch.layer_index(layer)?;
        let mut outs = self.run(x, idx + 1, false)?;
        outs.pop()
            .ok_or_else(|| Error::Other("forward_to: no layer ran".into()))
    }

    /// Runs layers `0..end`. With `keep_all` every output is returned; otherwise only the
    /// last, and a ReLU right after a conv or FC is fused into it, identity layers
    /// (flatten, eval dropout) only relabel the shape, and a lone ReLU works in place.
    fn run(&mut self, x: &Tensor, end: usize, keep_all: bool) -> Result<Vec<Tensor>> {
        self.model.arch.check_input(x)?;
        let model = self.model;
        let layers = &model.arch.layers;
        let mut outs: Vec<Tensor> = Vec::new();
        let mut cur: Option<Tensor> = None;
        let mut idx = 0;
        while idx < end {
            let layer = &layers[idx];
            let inp = if keep_all {
                outs.last().unwrap_or(x)
            } else {
                cur.as_ref().unwrap_or(x)
            };
            let n = inp.shape.first().copied().unwrap_or(0);
            let mut out_shape = vec![n];
            out_shape.extend(layer.output_shape(&inp.shape[1..])?);
            let identity = matches!(
                layer,
                Layer::Flatten { .. } | Layer::Dropout(_) | Layer::Relu { .. }
            );
            if !keep_all && identity {
                let mut t = cur.take().unwrap_or_else(|| x.clone());
                if matches!(layer, Layer::Relu { .. }) {
                    t.data.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                t.shape = out_shape;
                cur = Some(t);
                idx += 1;
                continue;
            }
            let fuse = !keep_all
                && matches!(layer, Layer::Conv(_) | Layer::Linear(_))
                && idx + 1 < end
                && matches!(layers[idx + 1], Layer::Relu { .. });
            let mut out = Tensor::zeros(&out_shape);
            self.layer_forward(layer, inp, &mut out, fuse)?;
            idx += if fuse { 2 } else { 1 };
            if keep_all {
                outs.push(out);
            } else {
                cur = Some(out);
            }
        }
        if !keep_all {
            outs.push(cur.unwrap_or_else(|| x.clone()));
        }
        Ok(outs)
    }

    /// Forward of one layer (eval mode) from `x` into `out` (already shaped); `relu` fuses a
    /// following ReLU into a conv or FC. The one place layers are dispatched.
    fn layer_forward(
        &mut self,
        layer: &Layer,
        x: &Tensor,
        out: &mut Tensor,
        relu: bool,
    ) -> Result<()> {
        let n = x.shape.first().copied().unwrap_or(0);
        match layer {
            Layer::Conv(spec) => {
                let [n, _, h, w] = x.nchw(&spec.name)?;
                let g = cpu::ConvGeom::new(spec, n, h, w)?;
                let (wt, b) = (self.model.weight(&spec.name)?, self.model.bias(&spec.name)?);
                conv2d_forward(
                    &mut self.ws,
                    &g,
                    &x.data,
                    &wt.data,
                    &b.data,
                    &mut out.data,
                    relu,
                )
            }
            Layer::Relu { .. } => {
                for (o, &v) in out.data.iter_mut().zip(&x.data) {
                    *o = v.max(0.0);
                }
                Ok(())
            }
            Layer::Lrn(spec) => {
                let [n, c, h, w] = x.nchw(&spec.name)?;
                let g = cpu::LrnGeom::new(spec, n, c, h, w)?;
                lrn_forward(&self.ws, &g, &x.data, &mut out.data)
            }
            Layer::MaxPool(spec) => {
                let [n, c, h, w] = x.nchw(&spec.name)?;
                let g = cpu::PoolGeom::new(spec, n, c, h, w)?;
                maxpool_forward(&self.ws, &g, &x.data, &mut out.data)
            }
            Layer::AdaptiveAvgPool(spec) => {
                let [n, c, h, w] = x.nchw(&spec.name)?;
                let g = cpu::AvgPoolGeom::new(spec, n, c, h, w)?;
                adaptive_avgpool_forward(&self.ws, &g, &x.data, &mut out.data)
            }
            Layer::Flatten { .. } | Layer::Dropout(_) => {
                out.data.copy_from_slice(&x.data);
                Ok(())
            }
            Layer::Linear(spec) => {
                let g = cpu::LinearGeom::new(spec, n);
                let (wt, b) = (self.model.weight(&spec.name)?, self.model.bias(&spec.name)?);
                linear_forward(
                    &self.ws,
                    &g,
                    &x.data,
                    &wt.data,
                    &b.data,
                    &mut out.data,
                    relu,
                )
            }
            Layer::Softmax { .. } => {
                let k = x.len().checked_div(n).unwrap_or(0);
                softmax_forward(n, k, &x.data, &mut out.data)
            }
        }
    }
}
