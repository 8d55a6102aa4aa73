//! Fine-tuning a trained net on new classes (Teachable Machine, at any depth): the last
//! fully connected layer replaced by one with the new classes, only the chosen depth
//! trained (the rest frozen, see `train::Engine::set_frozen`), and the memory a training
//! plan needs estimated up front so the page can say what fits and pick a batch that does.

use crate::error::{Error, Result};
use crate::model::{Labels, Layer};
use crate::net::Model;
use crate::tensor::{Rng, Tensor};

/// How much of the net is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    /// The new last layer only (fc8).
    Head,
    /// Every fully connected layer (fc6-fc8).
    Classifier,
    /// Every layer.
    All,
}

impl Depth {
    /// The layers (with parameters) that stay frozen at this depth.
    pub fn frozen(&self, model: &Model) -> Vec<String> {
        let with_params = model.arch.layers.iter().filter_map(|l| match l {
            Layer::Conv(c) => Some((c.name.clone(), false)),
            Layer::Linear(f) => Some((f.name.clone(), true)),
            _ => None,
        });
        let all: Vec<(String, bool)> = with_params.collect();
        let last = all.len().saturating_sub(1);
        all.into_iter()
            .enumerate()
            .filter(|(i, (_, fc))| match self {
                Depth::Head => *i != last,
                Depth::Classifier => !fc,
                Depth::All => false,
            })
            .map(|(_, (name, _))| name)
            .collect()
    }
}

/// `model` with its last fully connected layer replaced by one for `classes` (weights
/// N(0, 0.01) as the paper's, biases 0, seeded), and those class names as its labels.
pub fn with_new_head(model: &Model, classes: &[String], seed: u64) -> Result<Model> {
    if classes.len() < 2 {
        return Err(Error::Training(format!(
            "fine-tuning needs at least 2 classes, got {}",
            classes.len()
        )));
    }
    let mut arch = model.arch.clone();
    let last = arch
        .layers
        .iter()
        .rposition(|l| matches!(l, Layer::Linear(_)))
        .ok_or_else(|| Error::Arch("the network has no fully connected layer".into()))?;
    let Layer::Linear(fc) = &mut arch.layers[last] else {
        return Err(Error::Arch("the last fully connected layer moved".into()));
    };
    fc.out_features = classes.len();
    let (name, inputs) = (fc.name.clone(), fc.in_features);
    arch.labels = Labels::Custom(classes.to_vec());
    arch.validate()?;
    let mut params = model.params.clone();
    let mut w = Tensor::zeros(&[classes.len(), inputs]);
    Rng::new(seed).fill_normal(&mut w.data, 0.01);
    params.insert(format!("{name}.weight"), w);
    params.insert(format!("{name}.bias"), Tensor::zeros(&[classes.len()]));
    Model::new(arch, params)
}

/// The bytes a GPU training plan of `model` at `batch` holds, as `GpuTrainer` allocates
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Weights, their gradients and their momentum (every parameter has all three).
    pub parameters: u64,
    /// Per image: every layer's output and its gradient, and what layers keep for backward
    /// (max-pool's argmax, LRN's scale), plus the input.
    pub per_image: u64,
    pub batch: usize,
    pub total: u64,
}

/// What training `model` at `batch` takes on the GPU.
pub fn memory(model: &Model, batch: usize) -> Result<Memory> {
    let shapes = model.arch.shapes()?;
    let mut per: u64 = model.arch.input.iter().product::<usize>() as u64;
    for (layer, s) in model.arch.layers.iter().zip(&shapes) {
        let n = s.iter().product::<usize>() as u64;
        let saved = match layer {
            Layer::MaxPool(_) | Layer::Lrn(_) => n,
            _ => 0,
        };
        per += 2 * n + saved;
    }
    let parameters = 3 * 4 * model.arch.param_count();
    let per_image = 4 * per;
    Ok(Memory {
        parameters,
        per_image,
        batch,
        total: parameters + per_image * batch as u64,
    })
}

/// The largest batch up to `max` whose plan fits `budget` bytes, or an error saying how
/// much the parameters alone need.
pub fn largest_batch(model: &Model, budget: u64, max: usize) -> Result<usize> {
    let m = memory(model, 1)?;
    if m.total > budget {
        return Err(Error::Training(format!(
            "training this net needs {:.0} MB for its weights, gradients and momentum and {:.1} \
             MB per image, over the {:.0} MB available",
            m.parameters as f64 / 1e6,
            m.per_image as f64 / 1e6,
            budget as f64 / 1e6
        )));
    }
    let fit = ((budget - m.parameters) / m.per_image.max(1)) as usize;
    Ok(fit.clamp(1, max.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_head_keeps_the_body_and_names_the_classes() {
        let m = Model::random(crate::model::mini(), 1).unwrap();
        let classes = vec!["cat".to_string(), "dog".into(), "bird".into()];
        let f = with_new_head(&m, &classes, 2).unwrap();
        assert_eq!(f.weight("fc8").unwrap().shape, vec![3, 512]);
        assert_eq!(f.params["conv1.weight"], m.params["conv1.weight"]);
        assert_eq!(f.params["fc7.bias"], m.params["fc7.bias"]);
        assert_eq!(f.arch.num_classes().unwrap(), 3);
        assert_eq!(crate::labels::name(&f.arch.labels, 1), "dog");
        assert!(with_new_head(&m, &classes[..1], 2).is_err());
    }

    #[test]
    fn depths_freeze_the_right_layers() {
        let m = Model::random(crate::model::bvlc(), 1).unwrap();
        let f = |d: Depth| d.frozen(&m);
        assert_eq!(
            f(Depth::Head),
            ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
        );
        assert_eq!(
            f(Depth::Classifier),
            ["conv1", "conv2", "conv3", "conv4", "conv5"]
        );
        assert!(f(Depth::All).is_empty());
    }

    #[test]
    fn full_alexnet_needs_about_0_7_gb_for_its_parameters() {
        // the figure: ~0.7 GB for weights, gradients and momentum
        let m = Model::random(crate::model::bvlc(), 1).unwrap();
        let mem = memory(&m, 128).unwrap();
        assert_eq!(mem.parameters, 3 * 4 * 60_965_224);
        assert!((0.70e9..0.75e9).contains(&(mem.parameters as f64)));
        assert_eq!(mem.total, mem.parameters + 128 * mem.per_image);
        let b = largest_batch(&m, 1 << 30, 256).unwrap();
        assert!(memory(&m, b).unwrap().total <= 1 << 30);
        assert!(memory(&m, b + 1).unwrap().total > 1 << 30);
        assert!(largest_batch(&m, 500_000_000, 256).is_err());
    }
}
