//! Training on the fast backend: a training-mode forward that keeps a `net::Trace`, the
//! backward pass through it, and the fused loss and gradients, each with exactly the
//! contract of its reference in `net::Model` (`forward_train`, `backward`,
//! `loss_and_grads`) so the two are interchangeable and tested against each other.
//!
//! Every function takes `(&mut Workspace, &Model, ..)` and borrows the model only for the
//! call: a trainer owns the `Model` and updates its parameters between steps.
//!
//! Shapes: the network input `x` is `(N, C, H, W)` with `(C, H, W) = arch.input`; every
//! activation in the trace carries the batch dimension, `(N, C, H, W)` or `(N, F)`, and a
//! gradient has the shape of what it is the gradient of.
//!
//! What the trace saves is the reference's, with the same meaning: max pool's argmax (same
//! flat index and tie rule, bit-identical given the same input), LRN's scale, dropout's u32
//! seed from `cpu::dropout_layer_seed(seed, layer)`; dropout itself runs `cpu`'s code, so
//! its masks are the reference's bit for bit.

use super::{conv, layer_forward, linear, lrn, pool, Workspace};
use crate::cpu;
use crate::error::{Error, Result};
use crate::model::Layer;
use crate::net::{Mode, Model, Params, Saved, Trace};
use crate::tensor::Tensor;

/// Training-mode forward through every layer, keeping what [`backward`] needs. Same
/// contract as `Model::forward_train`: `acts[0] = x (N, C, H, W)`, `acts[i + 1]` = layer
/// `i`'s output, `saved[i]` what layer `i` saved.
pub fn forward_train(ws: &mut Workspace, model: &Model, x: &Tensor, seed: u64) -> Result<Trace> {
    run_train(ws, model, x, seed, model.arch.layers.len(), &mut None)
}

/// Wall time per layer of one training step (`loss_and_grads_timed`), seconds, indexed by
/// layer; layers a step does not run stay 0.
#[derive(Clone, Debug, Default)]
pub struct StepTimes {
    pub forward: Vec<f64>,
    pub backward: Vec<f64>,
}

/// A clock (seconds from any origin) and the times it has measured.
type Timing<'c> = Option<(&'c dyn Fn() -> f64, &'c mut StepTimes)>;

/// Training-mode forward through layers `0..end`.
fn run_train(
    ws: &mut Workspace,
    model: &Model,
    x: &Tensor,
    seed: u64,
    end: usize,
    timing: &mut Timing<'_>,
) -> Result<Trace> {
    model.arch.check_input(x)?;
    let mut acts = vec![x.clone()];
    let mut saved = Vec::with_capacity(end);
    for (idx, layer) in model.arch.layers[..end].iter().enumerate() {
        let t0 = timing.as_ref().map(|(clock, _)| clock());
        let inp = &acts[idx];
        let n = inp.shape.first().copied().unwrap_or(0);
        let mut out_shape = vec![n];
        out_shape.extend(layer.output_shape(&inp.shape[1..])?);
        let mut out = Tensor::zeros(&out_shape);
        let s = match layer {
            Layer::Lrn(spec) => {
                let [n, c, h, w] = inp.nchw(&spec.name)?;
                let g = cpu::LrnGeom::new(spec, n, c, h, w)?;
                let mut scale = vec![0.0; inp.len()];
                lrn::lrn_forward_train(ws, &g, &inp.data, &mut out.data, &mut scale)?;
                Saved::LrnScale(scale)
            }
            Layer::MaxPool(spec) => {
                let [n, c, h, w] = inp.nchw(&spec.name)?;
                let g = cpu::PoolGeom::new(spec, n, c, h, w)?;
                let mut argmax = vec![0u32; out.len()];
                pool::maxpool_forward_train(ws, &g, &inp.data, &mut out.data, &mut argmax)?;
                Saved::Argmax(argmax)
            }
            Layer::Dropout(spec) => {
                let s = cpu::dropout_layer_seed(seed, idx);
                cpu::dropout_forward(spec.p, s, &inp.data, &mut out.data)?;
                Saved::DropoutSeed(s)
            }
            // The trace keeps every pre-ReLU output, so nothing is fused here.
            _ => {
                layer_forward(ws, model, layer, inp, &mut out, false)?;
                Saved::Nothing
            }
        };
        acts.push(out);
        saved.push(s);
        if let (Some(t0), Some((clock, times))) = (t0, timing.as_mut()) {
            record(&mut times.forward, idx, clock() - t0);
        }
    }
    Ok(Trace {
        mode: Mode::Train { seed },
        acts,
        saved,
    })
}

fn shape_err(what: String, expected: &[usize], got: &[usize]) -> Error {
    Error::Shape {
        what,
        expected: expected.to_vec(),
        got: got.to_vec(),
    }
}

/// Backward through the layers `trace` covers, from `dout = dL/d(trace.output())` (the
/// shape of the last activation). Same contract as `Model::backward`: returns the
/// parameter gradients (keyed `"{layer}.weight"` / `"{layer}.bias"`, for those layers) and,
/// when `need_input_grad`, `dL/d(input)` `(N, C, H, W)`.
///
/// Without `need_input_grad` nothing below the first layer with parameters runs, and that
/// layer computes only its parameter gradients (for conv1, the input gradient would be
/// its most expensive product).
pub fn backward(
    ws: &mut Workspace,
    model: &Model,
    trace: &Trace,
    dout: &Tensor,
    need_input_grad: bool,
) -> Result<(Params, Option<Tensor>)> {
    backward_timed(ws, model, trace, dout, need_input_grad, &mut None)
}

/// Adds `secs` to `v[idx]`, growing `v` as needed.
fn record(v: &mut Vec<f64>, idx: usize, secs: f64) {
    if v.len() <= idx {
        v.resize(idx + 1, 0.0);
    }
    v[idx] += secs;
}

fn backward_timed(
    ws: &mut Workspace,
    model: &Model,
    trace: &Trace,
    dout: &Tensor,
    need_input_grad: bool,
    timing: &mut Timing<'_>,
) -> Result<(Params, Option<Tensor>)> {
    let layers = &model.arch.layers;
    let end = trace.saved.len();
    if trace.acts.len() != end + 1 || end > layers.len() {
        return Err(Error::Other(format!(
            "fast backward: trace has {} activations for {end} layers (model has {})",
            trace.acts.len(),
            layers.len()
        )));
    }
    let last = trace.output();
    if dout.shape != last.shape || dout.data.len() != last.data.len() {
        return Err(shape_err(
            "fast backward: dout (shape of the last output)".into(),
            &last.shape,
            &dout.shape,
        ));
    }
    // The lowest layer whose input gradient anyone needs is `stop`: 0 with
    // `need_input_grad`, else the first layer with parameters.
    let stop = if need_input_grad {
        0
    } else {
        layers[..end]
            .iter()
            .position(|l| l.param_shapes().is_some())
            .unwrap_or(end)
    };
    let mut grads = Params::new();
    let mut d = dout.clone();
    for idx in (stop..end).rev() {
        let t0 = timing.as_ref().map(|(clock, _)| clock());
        let layer = &layers[idx];
        let (inp, out) = (&trace.acts[idx], &trace.acts[idx + 1]);
        if out.shape != d.shape || out.len() != d.len() {
            return Err(shape_err(
                format!("fast backward: gradient of layer {:?}", layer.name()),
                &out.shape,
                &d.shape,
            ));
        }
        let want_dinp = need_input_grad || idx > stop;
        let n = inp.shape.first().copied().unwrap_or(0);
        // Elementwise layers and relabels work in place on `d`; the others write a new
        // input gradient (when wanted).
        let mut dinp = match layer {
            Layer::Relu { .. } | Layer::Flatten { .. } => None,
            Layer::Dropout(_) if !matches!(trace.saved[idx], Saved::DropoutSeed(_)) => None,
            _ if want_dinp => Some(Tensor::zeros(&inp.shape)),
            _ => None,
        };
        let dinp_data = dinp.as_mut().map(|t| t.data.as_mut_slice());
        match (layer, &trace.saved[idx]) {
            (Layer::Conv(spec), _) => {
                let [n, _, h, w] = inp.nchw(&spec.name)?;
                let g = cpu::ConvGeom::new(spec, n, h, w)?;
                let wt = model.weight(&spec.name)?;
                let mut dw = Tensor::zeros(&wt.shape);
                let mut db = Tensor::zeros(&[spec.out_channels]);
                conv::conv2d_backward(
                    ws,
                    &g,
                    &d.data,
                    &inp.data,
                    &wt.data,
                    dinp_data,
                    &mut dw.data,
                    &mut db.data,
                )?;
                grads.insert(format!("{}.weight", spec.name), dw);
                grads.insert(format!("{}.bias", spec.name), db);
            }
            (Layer::Linear(spec), _) => {
                let g = cpu::LinearGeom::new(spec, n);
                let wt = model.weight(&spec.name)?;
                let mut dw = Tensor::zeros(&wt.shape);
                let mut db = Tensor::zeros(&[spec.out_features]);
                linear::linear_backward(
                    ws,
                    &g,
                    &d.data,
                    &inp.data,
                    &wt.data,
                    dinp_data,
                    &mut dw.data,
                    &mut db.data,
                )?;
                grads.insert(format!("{}.weight", spec.name), dw);
                grads.insert(format!("{}.bias", spec.name), db);
            }
            (Layer::Relu { .. }, _) => {
                if inp.len() != d.len() {
                    return Err(shape_err(
                        format!("fast backward: input of {:?}", layer.name()),
                        &d.shape,
                        &inp.shape,
                    ));
                }
                // dinp = dout * [inp > 0], as cpu::relu_backward, in place.
                for (g, &x) in d.data.iter_mut().zip(&inp.data) {
                    *g = if x > 0.0 { *g } else { 0.0 };
                }
            }
            (Layer::Lrn(spec), Saved::LrnScale(scale)) => {
                if let Some(di) = dinp_data {
                    let [n, c, h, w] = inp.nchw(&spec.name)?;
                    let g = cpu::LrnGeom::new(spec, n, c, h, w)?;
                    lrn::lrn_backward(ws, &g, &d.data, &inp.data, &out.data, scale, di)?;
                }
            }
            (Layer::MaxPool(spec), Saved::Argmax(argmax)) => {
                if let Some(di) = dinp_data {
                    let [n, c, h, w] = inp.nchw(&spec.name)?;
                    let g = cpu::PoolGeom::new(spec, n, c, h, w)?;
                    pool::maxpool_backward(ws, &g, &d.data, argmax, di)?;
                }
            }
            (Layer::AdaptiveAvgPool(spec), _) => {
                if let Some(di) = dinp_data {
                    let [n, c, h, w] = inp.nchw(&spec.name)?;
                    let g = cpu::AvgPoolGeom::new(spec, n, c, h, w)?;
                    pool::adaptive_avgpool_backward(ws, &g, &d.data, di)?;
                }
            }
            (Layer::Dropout(spec), Saved::DropoutSeed(s)) => {
                if let Some(di) = dinp_data {
                    cpu::dropout_backward(spec.p, *s, &d.data, di)?;
                }
            }
            // Flatten, and dropout traced in eval mode: the identity, relabelled below.
            (Layer::Flatten { .. } | Layer::Dropout(_), _) => {
                if inp.len() != d.len() {
                    return Err(shape_err(
                        format!("fast backward: input of {:?}", layer.name()),
                        &d.shape,
                        &inp.shape,
                    ));
                }
            }
            (Layer::Softmax { .. }, _) => {
                if let Some(di) = dinp_data {
                    let k = out.len().checked_div(n).unwrap_or(0);
                    cpu::softmax_backward(n, k, &d.data, &out.data, di)?;
                }
            }
            (l, s) => {
                return Err(Error::Other(format!(
                    "fast backward: layer {:?} ({}) has no saved state of its kind (got {s:?})",
                    l.name(),
                    l.kind()
                )))
            }
        }
        match dinp {
            Some(t) => d = t,
            None => d.shape.clone_from(&inp.shape),
        }
        if let (Some(t0), Some((clock, times))) = (t0, timing.as_mut()) {
            record(&mut times.backward, idx, clock() - t0);
        }
    }
    Ok((grads, need_input_grad.then_some(d)))
}

/// Mean softmax cross-entropy of the logits for `labels` (one per image, `< K`) and its
/// gradient with respect to every parameter, in training mode (dropout seeded with
/// `seed`). Same contract as `Model::loss_and_grads`: a terminal `Softmax` layer is not
/// run (the fused loss includes it, with gradient `(probs - onehot) / N`); the logits must
/// be `(N, K)`. The network input's gradient is never computed.
pub fn loss_and_grads(
    ws: &mut Workspace,
    model: &Model,
    x: &Tensor,
    labels: &[usize],
    seed: u64,
) -> Result<(f32, Params)> {
    loss_and_grads_inner(ws, model, x, labels, seed, &mut None)
}

/// [`loss_and_grads`], also timing every layer's forward and backward with `clock`
/// (seconds; `alexnet bench --train`). The softmax cross-entropy between the two (a few
/// microseconds) is not attributed to a layer.
pub fn loss_and_grads_timed(
    ws: &mut Workspace,
    model: &Model,
    x: &Tensor,
    labels: &[usize],
    seed: u64,
    clock: &dyn Fn() -> f64,
) -> Result<(f32, Params, StepTimes)> {
    let mut times = StepTimes::default();
    let (loss, grads) =
        loss_and_grads_inner(ws, model, x, labels, seed, &mut Some((clock, &mut times)))?;
    Ok((loss, grads, times))
}

fn loss_and_grads_inner(
    ws: &mut Workspace,
    model: &Model,
    x: &Tensor,
    labels: &[usize],
    seed: u64,
    timing: &mut Timing<'_>,
) -> Result<(f32, Params)> {
    let n = model.arch.check_input(x)?;
    if labels.len() != n {
        return Err(shape_err(
            "loss_and_grads: labels (N)".into(),
            &[n],
            &[labels.len()],
        ));
    }
    let end = crate::net::loss_layers(&model.arch);
    let trace = run_train(ws, model, x, seed, end, timing)?;
    let (loss, dlogits) = crate::net::softmax_xent(trace.output(), labels)?;
    let (grads, _) = backward_timed(ws, model, &trace, &dlogits, false, timing)?;
    Ok((loss, grads))
}
