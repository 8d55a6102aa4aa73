//! Recognising the family of an imported graph (bvlc, torchvision, ours, or custom).

use super::*;
use crate::error::{Error, Result};
use crate::model::{self, Arch, DropoutSpec, Family, Labels, Layer, PoolSpec};
use crate::shape::{self};

/// Layers without Dropout (identity at inference).
pub(super) fn compute_layers(layers: &[Layer]) -> Vec<&Layer> {
    layers
        .iter()
        .filter(|l| !matches!(l, Layer::Dropout(_)))
        .collect()
}

/// How strictly two layer lists are compared.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Match {
    /// Same computation: equal up to Dropout, LRN's alpha convention and max-pool encodings
    /// that give the same windows.
    Equivalent,
    /// Same layers except max-pool padding and rounding (the family is the same).
    Structure,
}

pub(super) fn layers_match(a: &[Layer], b: &[Layer], input: [usize; 3], how: Match) -> bool {
    let (a, b) = (compute_layers(a), compute_layers(b));
    if a.len() != b.len() {
        return false;
    }
    let mut shape = input.to_vec();
    for (x, y) in a.iter().zip(&b) {
        let same = match (x, y) {
            (Layer::Lrn(p), Layer::Lrn(q)) => {
                let (ea, eb) = (p.effective_alpha(), q.effective_alpha());
                p.name == q.name
                    && p.size == q.size
                    && p.beta == q.beta
                    && p.k == q.k
                    && (ea - eb).abs() <= 1e-6 * ea.abs().max(eb.abs())
            }
            (Layer::MaxPool(p), Layer::MaxPool(q)) => {
                p.name == q.name
                    && p.kernel == q.kernel
                    && p.stride == q.stride
                    && (how == Match::Structure || pools_equivalent(p, q, &shape))
            }
            _ => x == y,
        };
        if !same {
            return false;
        }
        match x.output_shape(&shape) {
            Ok(s) => shape = s,
            Err(_) => return false,
        }
    }
    true
}

/// Two max pools with equal kernel and stride compute the same thing on this input when their
/// leading pads are equal and they produce the same number of windows: the windows then start
/// at the same places, and padding (-inf) never wins a max (every window keeps at least one
/// real element under both the ceil rule and pads < kernel).
pub(super) fn pools_equivalent(p: &PoolSpec, q: &PoolSpec, shape: &[usize]) -> bool {
    let [_, h, w] = match shape {
        [c, h, w] => [*c, *h, *w],
        _ => return false,
    };
    if p.pads.top != q.pads.top || p.pads.left != q.pads.left {
        return false;
    }
    let out = |s: &PoolSpec| -> Option<(usize, usize)> {
        let oh = shape::pool_out(
            h,
            s.kernel[0],
            s.stride[0],
            s.pads.top,
            s.pads.bottom,
            s.rounding,
        )
        .ok()?;
        let ow = shape::pool_out(
            w,
            s.kernel[1],
            s.stride[1],
            s.pads.left,
            s.pads.right,
            s.rounding,
        )
        .ok()?;
        Some((oh, ow))
    };
    out(p).is_some() && out(p) == out(q)
}

pub(super) fn dropouts(layers: &[Layer]) -> Vec<&DropoutSpec> {
    layers
        .iter()
        .filter_map(|l| match l {
            Layer::Dropout(d) => Some(d),
            _ => None,
        })
        .collect()
}

pub(super) fn recognise(input: [usize; 3], layers: Vec<Layer>, meta: Option<&str>) -> Result<Arch> {
    if let Some(json) = meta {
        let arch: Arch = serde_json::from_str(json).map_err(|e| {
            Error::Onnx(format!(
                "metadata {ARCH_KEY} is not a valid architecture: {e}"
            ))
        })?;
        if arch.input != input || !layers_match(&arch.layers, &layers, input, Match::Equivalent) {
            return Err(Error::Onnx(format!(
                "metadata {ARCH_KEY} describes a different network than the graph (input {:?} vs {input:?}); \
                 the file was edited after export",
                arch.input
            )));
        }
        return Ok(arch);
    }
    let builtins: Vec<Arch> = Arch::BUILTINS
        .iter()
        .filter_map(|n| Arch::builtin(n).ok())
        .collect();
    let candidates = || builtins.iter().filter(|b| b.input == input);
    if let Some(b) = candidates().find(|b| b.layers == layers) {
        return Ok(b.clone());
    }
    if let Some(b) = candidates().find(|b| {
        layers_match(&b.layers, &layers, input, Match::Equivalent)
            && (dropouts(&layers).is_empty() || dropouts(&layers) == dropouts(&b.layers))
    }) {
        return Ok(b.clone());
    }
    if let Some(b) =
        candidates().find(|b| layers_match(&b.layers, &layers, input, Match::Structure))
    {
        return Ok(Arch {
            layers,
            ..b.clone()
        });
    }
    let mut arch = Arch {
        family: Family::Custom,
        input,
        layers,
        preprocess: model::torchvision().preprocess,
        labels: Labels::Imagenet,
    };
    arch.preprocess.crop = input[1];
    arch.preprocess.resize = (input[1] * 256).div_ceil(224);
    let n = arch.num_classes()?;
    if n != 1000 {
        arch.labels = Labels::Custom((0..n).map(|i| format!("class {i}")).collect());
    }
    Ok(arch)
}
