//! From an image to labelled probabilities: preprocessing, forward, softmax (when the
//! network does not end in one), optional 10-crop averaging, top-K. Shared by the CLI and
//! the wasm binding.

use crate::error::{Error, Result};
use crate::labels;
use crate::model::Layer;
use crate::model::Model;
use crate::preprocess;
use crate::tensor::Tensor;

/// One ranked class.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub probability: f32,
}

/// The network's output `(N, classes)` as probabilities: a softmax unless the network
/// (of architecture `arch`) ends in one.
pub fn probabilities(arch: &crate::model::Arch, out: Tensor) -> Result<Tensor> {
    let ends_in_softmax = matches!(arch.layers.last(), Some(Layer::Softmax { .. }));
    if ends_in_softmax {
        return Ok(out);
    }
    let [n, k] = out.shape[..] else {
        return Err(Error::Arch(format!(
            "the network's output {:?} is not (N, classes)",
            out.shape
        )));
    };
    let mut probs = Tensor::zeros(&[n, k]);
    crate::elementwise::softmax_forward(n, k, &out.data, &mut probs.data)?;
    Ok(probs)
}

/// Mean over the batch of `(N, classes)` probabilities: the paper's 10-crop average.
pub fn mean_rows(p: &Tensor) -> Vec<f32> {
    let (n, k) = (p.shape[0], p.shape[1]);
    let mut m = vec![0.0f32; k];
    for row in p.data.chunks_exact(k) {
        for (a, b) in m.iter_mut().zip(row) {
            *a += b / n as f32;
        }
    }
    m
}

/// The `k` largest entries, highest first (ties by lower index).
pub fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    idx.into_iter().take(k).map(|i| (i, probs[i])).collect()
}

/// Decodes an encoded image into the network's input: `(1, C, H, W)`, or with `tta` the
/// paper's ten crops `(10, C, H, W)`.
pub fn prepare_input(model: &Model, image: &[u8], tta: bool) -> Result<Tensor> {
    let img = preprocess::decode(image)?;
    let pp = &model.arch.preprocess;
    if tta {
        preprocess::ten_crop(&img, pp)
    } else {
        preprocess::to_input(&img, pp)
    }
}

/// The top-`k` classes from the network's output for one image's crops `(N, classes)`:
/// probabilities averaged over the crops.
pub fn rank(model: &Model, out: Tensor, k: usize) -> Result<Vec<Prediction>> {
    let p = probabilities(&model.arch, out)?;
    let mean = mean_rows(&p);
    Ok(top_k(&mean, k)
        .into_iter()
        .map(|(index, probability)| Prediction {
            index,
            label: labels::name(&model.arch.labels, index),
            probability,
        })
        .collect())
}

/// Decodes an encoded image and returns the top-`k` classes on the CPU reference; with
/// `tta` the softmax is averaged over the paper's ten crops.
pub fn classify_bytes(model: &Model, image: &[u8], k: usize, tta: bool) -> Result<Vec<Prediction>> {
    let x = prepare_input(model, image, tta)?;
    rank(model, model.forward(&x)?, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let p = [0.1, 0.4, 0.1, 0.4];
        assert_eq!(top_k(&p, 3), vec![(1, 0.4), (3, 0.4), (0, 0.1)]);
        assert_eq!(top_k(&p, 10).len(), 4);
    }

    #[test]
    fn mean_rows_averages() {
        let p = Tensor::new(&[2, 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        assert_eq!(mean_rows(&p), vec![0.5, 0.5]);
    }
}
