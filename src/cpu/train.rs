//! Training on the fast backend: a training-mode forward that keeps a `model::Trace`, the
//! backward pass through it, and the fused loss and gradients, each with exactly the
//! contract of its reference in `reference::network` (`forward_train`, `backward`,
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
//! seed from `elementwise::dropout_layer_seed(seed, layer)`; dropout itself runs `cpu`'s code, so
//! its masks are the reference's bit for bit.

use super::{conv, layer_forward, linear, lrn, pool, Workspace};
use crate::elementwise;
use crate::error::{Error, Result};
use crate::model::{Geom, Layer};
use crate::model::{Mode, Model, Params, Saved, Trace};
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
    let n = model.arch.check_input(x)?;
    let mut acts = vec![x.clone()];
    let mut saved = Vec::with_capacity(end);
    for step in model.arch.plan_to(n, end)? {
        let idx = step.index;
        let t0 = timing.as_ref().map(|(clock, _)| clock());
        let inp = &acts[idx];
        let mut out = Tensor::zeros(&step.output);
        let s = match step.geom {
            Geom::Lrn(g) => {
                let mut scale = vec![0.0; inp.len()];
                lrn::lrn_forward_train(ws, &g, &inp.data, &mut out.data, &mut scale)?;
                Saved::LrnScale(scale)
            }
            Geom::MaxPool(g) => {
                let mut argmax = vec![0u32; out.len()];
                pool::maxpool_forward_train(ws, &g, &inp.data, &mut out.data, &mut argmax)?;
                Saved::Argmax(argmax)
            }
            Geom::Dropout { p } => {
                let s = elementwise::dropout_layer_seed(seed, idx);
                elementwise::dropout_forward(p, s, &inp.data, &mut out.data)?;
                Saved::DropoutSeed(s)
            }
            // The trace keeps every pre-ReLU output, so nothing is fused here.
            _ => {
                layer_forward(ws, model, &step, inp, &mut out, false)?;
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
        return Err(Error::Internal(format!(
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
    let n = trace.acts[0].shape.first().copied().unwrap_or(0);
    let plan = model.arch.plan_to(n, end)?;
    for step in plan[stop..].iter().rev() {
        let idx = step.index;
        let t0 = timing.as_ref().map(|(clock, _)| clock());
        let layer = step.layer;
        let (inp, out) = (&trace.acts[idx], &trace.acts[idx + 1]);
        if out.shape != d.shape || out.len() != d.len() {
            return Err(shape_err(
                format!("fast backward: gradient of layer {:?}", layer.name()),
                &out.shape,
                &d.shape,
            ));
        }
        let want_dinp = need_input_grad || idx > stop;
        // Elementwise layers and relabels work in place on `d`; the others write a new
        // input gradient (when wanted).
        let mut dinp = match layer {
            Layer::Relu { .. } | Layer::Flatten { .. } => None,
            Layer::Dropout(_) if !matches!(trace.saved[idx], Saved::DropoutSeed(_)) => None,
            _ if want_dinp => Some(Tensor::zeros(&inp.shape)),
            _ => None,
        };
        let dinp_data = dinp.as_mut().map(|t| t.data.as_mut_slice());
        let name = step.name();
        match (step.geom, &trace.saved[idx]) {
            (Geom::Conv(g), _) => {
                model.param_grads(name, &mut grads, |w, dw, db| {
                    conv::conv2d_backward(ws, &g, &d.data, &inp.data, w, dinp_data, dw, db)
                })?;
            }
            (Geom::Linear(g), _) => {
                model.param_grads(name, &mut grads, |w, dw, db| {
                    linear::linear_backward(ws, &g, &d.data, &inp.data, w, dinp_data, dw, db)
                })?;
            }
            (Geom::Relu, _) => {
                if inp.len() != d.len() {
                    return Err(shape_err(
                        format!("fast backward: input of {:?}", layer.name()),
                        &d.shape,
                        &inp.shape,
                    ));
                }
                // dinp = dout * [inp > 0], as reference::relu_backward, in place.
                for (g, &x) in d.data.iter_mut().zip(&inp.data) {
                    *g = if x > 0.0 { *g } else { 0.0 };
                }
            }
            (Geom::Lrn(g), Saved::LrnScale(scale)) => {
                if let Some(di) = dinp_data {
                    lrn::lrn_backward(ws, &g, &d.data, &inp.data, &out.data, scale, di)?;
                }
            }
            (Geom::MaxPool(g), Saved::Argmax(argmax)) => {
                if let Some(di) = dinp_data {
                    pool::maxpool_backward(ws, &g, &d.data, argmax, di)?;
                }
            }
            (Geom::AvgPool(g), _) => {
                if let Some(di) = dinp_data {
                    pool::adaptive_avgpool_backward(ws, &g, &d.data, di)?;
                }
            }
            (Geom::Dropout { p }, Saved::DropoutSeed(s)) => {
                if let Some(di) = dinp_data {
                    elementwise::dropout_backward(p, *s, &d.data, di)?;
                }
            }
            // Flatten, and dropout traced in eval mode: the identity, relabelled below.
            (Geom::Flatten | Geom::Dropout { .. }, _) => {
                if inp.len() != d.len() {
                    return Err(shape_err(
                        format!("fast backward: input of {:?}", layer.name()),
                        &d.shape,
                        &inp.shape,
                    ));
                }
            }
            (Geom::Softmax { n, k }, _) => {
                if let Some(di) = dinp_data {
                    elementwise::softmax_backward(n, k, &d.data, &out.data, di)?;
                }
            }
            (_, s) => {
                return Err(Error::Internal(format!(
                    "fast backward: layer {:?} ({}) has no saved state of its kind (got {s:?})",
                    layer.name(),
                    layer.kind()
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
    let end = crate::model::loss_layers(&model.arch);
    let trace = run_train(ws, model, x, seed, end, timing)?;
    let (loss, dlogits) = crate::elementwise::softmax_xent(trace.output(), labels)?;
    let (grads, _) = backward_timed(ws, model, &trace, &dlogits, false, timing)?;
    Ok((loss, grads))
}
