//! The fast CPU backend: the same network as the reference (`reference::network`) in eval mode
//! and its training pass (`train`: training-mode forward with a `model::Trace`, backward, fused
//! loss and gradients), fast. It is the fallback when a browser has no WebGPU and the
//! native path when there is no adapter. Tested layer by layer and end to end against
//! `crate::cpu` and `reference::network` in `tests/fast_backend.rs`.
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
//!   batch 1 by `FastCpu::new`, grown (never shrunk) when a larger batch or a backward pass
//!   needs more.
//! - **Training** (`train`): free functions `forward_train` / `backward` /
//!   `loss_and_grads` taking `(&mut Workspace, &Model, ..)`, so a trainer can own the
//!   `Model` and update it between steps (`FastCpu` has thin methods too). The trace is
//!   `model::Trace` with the reference's meaning (argmax, LRN scale, dropout seed; dropout
//!   is `cpu`'s own code, so masks are bit-identical). Backward per layer: conv as two
//!   GEMMs per (image, group), `dW += dY · col^T` (col rebuilt by im2col) and
//!   `dcol = W^T · dY` then col2im; FC as two strided GEMMs; LRN with a running sum over
//!   the reverse window (O(1) per element); pools as per-plane scatters; ReLU, flatten and
//!   eval dropout in place; dropout and softmax by `cpu`'s O(n) functions. The gradient of
//!   the network input is skipped unless asked for (conv1's `W^T · dY` and col2im are its
//!   most expensive part). Threads split images (conv, summing per-thread weight-gradient
//!   partials added in thread order: deterministic for a thread count), planes (pools),
//!   or GEMM output blocks (FC, and conv at N = 1).
//!
//! # Numerics
//! f32 accumulation in a blocked order (the reference accumulates conv and FC in f64), so
//! results differ from the reference by rounding: ~1e-6 of the largest output for K up to
//! ~10k terms. Pools are bit-identical (forward, argmax and backward); LRN differs by a few
//! ulps (running sums, sqrt form of `^-0.75`). Weight gradients sum `N*OH*OW` terms in f32
//! (bias gradients in f64 over f32 row sums); a sum over a batch is split into per-image
//! GEMMs, so its error grows like a K-term dot product per image plus N additions.

pub mod conv;
pub mod gemm;
pub mod linear;
pub mod lrn;
pub mod pool;
pub mod train;

pub use conv::{conv2d_backward, conv2d_forward};
pub use linear::{linear_backward, linear_forward};
pub use lrn::{lrn_backward, lrn_forward, lrn_forward_train};
pub use pool::{
    adaptive_avgpool_backward, adaptive_avgpool_forward, maxpool_backward, maxpool_forward,
    maxpool_forward_train, softmax_forward,
};
pub use train::{backward, forward_train, loss_and_grads, loss_and_grads_timed, StepTimes};

use crate::error::{Error, Result};
use crate::model::{Geom, Layer, Step};
use crate::model::{Model, Params, Trace};
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
/// Buffers grow to the largest size asked for and are never shrunk, so a training loop
/// allocates scratch once.
#[derive(Debug)]
pub struct Workspace {
    threads: usize,
    /// im2col (and, in backward, col2im) buffers: one or two per thread.
    cols: Vec<Vec<f32>>,
    /// Per-thread partial weight gradients of a convolution, summed after the threads end.
    partials: Vec<Vec<f32>>,
}

/// `count` buffers of at least `len` floats each from `pool` (grown, never shrunk).
fn grow(pool: &mut Vec<Vec<f32>>, count: usize, len: usize) -> &mut [Vec<f32>] {
    if pool.len() < count {
        pool.resize_with(count, Vec::new);
    }
    for c in &mut pool[..count] {
        if c.len() < len {
            c.resize(len, 0.0);
        }
    }
    &mut pool[..count]
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
            partials: Vec::new(),
        }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Floats currently reserved for scratch (im2col buffers and gradient partials).
    pub fn scratch_len(&self) -> usize {
        self.cols.iter().chain(&self.partials).map(Vec::len).sum()
    }

    /// `count` im2col buffers of at least `len` floats each (grown, never shrunk).
    pub(crate) fn cols(&mut self, count: usize, len: usize) -> &mut [Vec<f32>] {
        grow(&mut self.cols, count, len)
    }

    /// `cols` im2col buffers of `col_len` floats and `partials` buffers of `partial_len`
    /// floats, borrowed together (a conv backward thread needs both).
    pub(crate) fn cols_and_partials(
        &mut self,
        cols: usize,
        col_len: usize,
        partials: usize,
        partial_len: usize,
    ) -> (&mut [Vec<f32>], &mut [Vec<f32>]) {
        (
            grow(&mut self.cols, cols, col_len),
            grow(&mut self.partials, partials, partial_len),
        )
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

/// Calls `f(first, run)` on `out` cut into runs of whole units (`unit` elements each,
/// `first` the index of the run's first unit), the runs split across `threads` when
/// `parallel` (callers pass whether the work is worth a thread).
pub(crate) fn par_units<T, F>(threads: usize, out: &mut [T], unit: usize, parallel: bool, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    if unit == 0 || out.is_empty() {
        return;
    }
    let units = out.len() / unit;
    if threads <= 1 || units < 2 || !parallel {
        f(0, out);
        return;
    }
    let per = units.div_ceil(threads);
    thread::scope(|s| {
        for (t, run) in out.chunks_mut(per * unit).enumerate() {
            let f = &f;
            s.spawn(move || f(t * per, run));
        }
    });
}

/// `count` consecutive chunks of `len` floats of `buf`, or `count` `None`s: splits an
/// optional output (a gradient nobody may need) the way its companions are split.
pub(crate) fn opt_chunks(
    buf: Option<&mut [f32]>,
    len: usize,
    count: usize,
) -> Vec<Option<&mut [f32]>> {
    match buf {
        Some(b) => b.chunks_mut(len.max(1)).map(Some).collect(),
        None => (0..count).map(|_| None).collect(),
    }
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
        let mut need = 0;
        for step in model.arch.plan(1)? {
            if let Geom::Conv(g) = step.geom {
                need = need.max(conv::col_len(&g));
            }
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
            .ok_or_else(|| Error::Arch("the model has no layers".into()))
    }

    /// Inference up to and including `layer` (only that prefix is computed).
    pub fn forward_to(&mut self, x: &Tensor, layer: &str) -> Result<Tensor> {
        let idx = self.model.arch.layer_index(layer)?;
        let mut outs = self.run(x, idx + 1, false)?;
        outs.pop()
            .ok_or_else(|| Error::Internal("forward_to: no layer ran".into()))
    }

    /// Runs layers `0..end`. With `keep_all` every output is returned; otherwise only the
    /// last, and a ReLU right after a conv or FC is fused into it, identity layers
    /// (flatten, eval dropout) only relabel the shape, and a lone ReLU works in place.
    fn run(&mut self, x: &Tensor, end: usize, keep_all: bool) -> Result<Vec<Tensor>> {
        let n = self.model.arch.check_input(x)?;
        let model = self.model;
        let layers = &model.arch.layers;
        let plan = model.arch.plan_to(n, end)?;
        let mut outs: Vec<Tensor> = Vec::new();
        let mut cur: Option<Tensor> = None;
        let mut idx = 0;
        while idx < end {
            let step = &plan[idx];
            let layer = step.layer;
            let inp = if keep_all {
                outs.last().unwrap_or(x)
            } else {
                cur.as_ref().unwrap_or(x)
            };
            let out_shape = step.output.clone();
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
            layer_forward(&mut self.ws, model, step, inp, &mut out, fuse)?;
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

    /// Training-mode forward (see [`forward_train`]).
    pub fn forward_train(&mut self, x: &Tensor, seed: u64) -> Result<Trace> {
        forward_train(&mut self.ws, self.model, x, seed)
    }

    /// Backward through `trace` (see [`backward`]).
    pub fn backward(
        &mut self,
        trace: &Trace,
        dout: &Tensor,
        need_input_grad: bool,
    ) -> Result<(Params, Option<Tensor>)> {
        backward(&mut self.ws, self.model, trace, dout, need_input_grad)
    }

    /// Mean cross-entropy and parameter gradients (see [`loss_and_grads`]).
    pub fn loss_and_grads(
        &mut self,
        x: &Tensor,
        labels: &[usize],
        seed: u64,
    ) -> Result<(f32, Params)> {
        loss_and_grads(&mut self.ws, self.model, x, labels, seed)
    }
}

/// Forward of one step of the plan (eval mode) from `x` into `out` (already shaped);
/// `relu` fuses a following ReLU into a conv or FC. The one place layers are dispatched
/// (training mode adds its own LRN, max-pool and dropout in `train`).
pub(crate) fn layer_forward(
    ws: &mut Workspace,
    model: &Model,
    step: &Step,
    x: &Tensor,
    out: &mut Tensor,
    relu: bool,
) -> Result<()> {
    let name = step.name();
    match step.geom {
        Geom::Conv(g) => {
            let (wt, b) = (model.weight(name)?, model.bias(name)?);
            conv2d_forward(ws, &g, &x.data, &wt.data, &b.data, &mut out.data, relu)
        }
        Geom::Relu => {
            for (o, &v) in out.data.iter_mut().zip(&x.data) {
                *o = v.max(0.0);
            }
            Ok(())
        }
        Geom::Lrn(g) => lrn_forward(ws, &g, &x.data, &mut out.data),
        Geom::MaxPool(g) => maxpool_forward(ws, &g, &x.data, &mut out.data),
        Geom::AvgPool(g) => adaptive_avgpool_forward(ws, &g, &x.data, &mut out.data),
        Geom::Flatten | Geom::Dropout { .. } => {
            if out.len() != x.len() {
                return Err(Error::Internal(format!(
                    "fast forward: layer {name:?} maps {} values to {}",
                    x.len(),
                    out.len()
                )));
            }
            out.data.copy_from_slice(&x.data);
            Ok(())
        }
        Geom::Linear(g) => {
            let (wt, b) = (model.weight(name)?, model.bias(name)?);
            linear_forward(ws, &g, &x.data, &wt.data, &b.data, &mut out.data, relu)
        }
        Geom::Softmax { n, k } => softmax_forward(n, k, &x.data, &mut out.data),
    }
}
