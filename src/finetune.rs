//! Fine-tuning a trained net on new classes (Teachable Machine, at any depth): the last
//! fully connected layer replaced by one with the new classes, only the chosen depth
//! trained (the rest frozen, see `train::Engine::set_frozen`), and the memory a training
//! plan needs estimated up front so the page can say what fits and pick a batch that does.

use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::{Labels, Layer};
use crate::tensor::{Rng, Tensor};

/// How much of the net is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
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

/// A person's labelled photos for fine-tuning, each kept as the `side` x `side` square the
/// crops are taken from (the paper's 256x256 image for a 224 crop; `side = crop * 8 / 7` in
/// general, so a 32x32 net's crops move by up to 4 pixels).
pub struct Photos {
    pub side: u32,
    pub images: Vec<image::RgbImage>,
    pub labels: Vec<usize>,
}

impl Photos {
    /// Squares of `images` (shorter side resized, centre kept) for a net with `pp`.
    pub fn new(
        images: Vec<(image::RgbImage, usize)>,
        pp: &crate::model::Preprocess,
    ) -> Result<Photos> {
        let side = (pp.crop * 8).div_ceil(7).max(pp.crop) as u32;
        let mut out = Photos {
            side,
            images: Vec::with_capacity(images.len()),
            labels: Vec::with_capacity(images.len()),
        };
        for (img, label) in images {
            let r = crate::preprocess::resize_short(&img, side)?;
            out.images.push(crate::preprocess::center_crop(&r, side));
            out.labels.push(label);
        }
        Ok(out)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Holds out the last `n / every` photos (at least one) of each class that has at least
    /// 3, so every class keeps at least 2 to learn from; returns the held-out ones.
    pub fn split_held_out(&mut self, every: usize) -> Photos {
        let every = every.max(2);
        let classes = self.labels.iter().copied().max().map_or(0, |m| m + 1);
        let count = |c: usize| self.labels.iter().filter(|&&l| l == c).count();
        let counts: Vec<usize> = (0..classes).map(count).collect();
        let mut seen = vec![0usize; classes];
        let mut held = Photos {
            side: self.side,
            images: Vec::new(),
            labels: Vec::new(),
        };
        let (mut keep_i, mut keep_l) = (Vec::new(), Vec::new());
        for (img, l) in self.images.drain(..).zip(self.labels.drain(..)) {
            seen[l] += 1;
            let held_out = (counts[l] / every).max(1);
            if counts[l] >= 3 && seen[l] > counts[l] - held_out {
                held.images.push(img);
                held.labels.push(l);
            } else {
                keep_i.push(img);
                keep_l.push(l);
            }
        }
        self.images = keep_i;
        self.labels = keep_l;
        held
    }

    /// The PCA of these photos' RGB pixels (values in [0, 1]) for PCA lighting.
    pub fn pca(&self) -> crate::augment::Pca {
        crate::augment::rgb_pca(self.images.iter().flat_map(|img| {
            img.pixels().map(|p| {
                [
                    p[0] as f32 / 255.0,
                    p[1] as f32 / 255.0,
                    p[2] as f32 / 255.0,
                ]
            })
        }))
    }

    /// Photos `idx` as the input `(len, 3, crop, crop)`: the centre crop, or with `aug` a
    /// random crop, flip and PCA lighting drawn for `(seed, photo)`.
    pub fn batch(
        &self,
        idx: &[usize],
        pp: &crate::model::Preprocess,
        aug: Option<(&crate::augment::Augment, &crate::augment::Pca, u64)>,
    ) -> Result<Tensor> {
        let crop = pp.crop as u32;
        let mid = crate::preprocess::centre_offset(self.side, crop) as usize;
        let mut data = Vec::with_capacity(idx.len() * 3 * pp.crop * pp.crop);
        for &i in idx {
            let img = self
                .images
                .get(i)
                .ok_or_else(|| Error::Training(format!("photo {i} of {}", self.len())))?;
            let d = match aug {
                Some((a, pca, seed)) => {
                    let mut rng = Rng::new(crate::augment::image_seed(seed, i));
                    let size = [pp.crop, pp.crop];
                    a.draw(&mut rng, pca, self.side as usize, size, (mid, mid))
                }
                None => crate::augment::Draw::identity((mid, mid)),
            };
            let mut w = crate::preprocess::window(img, d.offset.0 as i64, d.offset.1 as i64, crop);
            if d.flip {
                image::imageops::flip_horizontal_in_place(&mut w);
            }
            if d.shift != [0.0; 3] {
                for p in w.pixels_mut() {
                    for c in 0..3 {
                        p[c] = (p[c] as f32 + d.shift[c] * 255.0).round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
            data.extend(crate::preprocess::normalize(&w, pp));
        }
        Tensor::new(&[idx.len(), 3, pp.crop, pp.crop], data)
    }
}

impl crate::train::Examples for Photos {
    fn len(&self) -> usize {
        Photos::len(self)
    }
    fn inputs(
        &self,
        idx: &[usize],
        arch: &crate::model::Arch,
        aug: Option<(&crate::augment::Augment, &crate::augment::Pca, u64)>,
    ) -> Result<Tensor> {
        self.batch(idx, &arch.preprocess, aug)
    }
    fn labels(&self, idx: &[usize]) -> Vec<usize> {
        idx.iter().map(|&i| self.labels[i]).collect()
    }
}

/// What a person chooses for a fine-tuning run (the page's form, `alexnet finetune`'s
/// options); every field has the page's default.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Options {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub epochs: usize,
    /// The largest batch wanted; the plan picks the largest that fits `budget_mb`.
    pub batch: usize,
    pub budget_mb: f64,
    pub seed: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lr: 0.005,
            momentum: 0.9,
            weight_decay: 0.0005,
            epochs: 30,
            batch: 32,
            budget_mb: 1024.0,
            seed: 1,
        }
    }
}

/// What a fine-tuning run will do, shown before it starts.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub classes: Vec<String>,
    pub depth: Depth,
    pub frozen: Vec<String>,
    pub train_images: usize,
    pub held_out: usize,
    pub batch: usize,
    pub epochs: usize,
    pub memory: Memory,
    pub budget_mb: f64,
}

/// A fine-tuning run ready for `train::run`: the base net with its new head, the person's
/// photos (one in four of a class with three or more held out, scored after every epoch),
/// a recipe at a fixed learning rate (no plateau schedule over so few epochs) and the plan.
pub struct Run {
    pub model: Model,
    pub data: crate::train::Data<Photos>,
    pub state: crate::train::State,
    pub plan: Plan,
}

/// Prepares fine-tuning `base` on `photos` (decoded images with their class index into
/// `classes`) at `depth`; the engine to train it starts from `run.model` with
/// `run.plan.frozen` frozen.
pub fn prepare(
    base: &Model,
    classes: &[String],
    photos: Vec<(image::RgbImage, usize)>,
    depth: Depth,
    o: &Options,
) -> Result<Run> {
    if let Some((i, _)) = photos
        .iter()
        .enumerate()
        .find(|(_, (_, l))| *l >= classes.len())
    {
        return Err(Error::Training(format!("photo {} has no class", i + 1)));
    }
    for (c, name) in classes.iter().enumerate() {
        if !photos.iter().any(|(_, l)| *l == c) {
            return Err(Error::Training(format!("class {name:?} has no photos")));
        }
    }
    crate::elementwise::Sgd {
        lr: o.lr,
        momentum: o.momentum,
        weight_decay: o.weight_decay,
    }
    .check()?;
    let model = with_new_head(base, classes, o.seed as u64)?;
    let pp = model.arch.preprocess.clone();
    let mut train = Photos::new(photos, &pp)?;
    let held = train.split_held_out(4);
    let budget = (o.budget_mb * 1e6) as u64;
    let batch = largest_batch(&model, budget, o.batch.min(train.len()))?;
    let memory = memory(&model, batch)?;
    let frozen = depth.frozen(&model);
    let epochs = o.epochs.max(1);
    let recipe = crate::train::Recipe {
        epochs,
        batch,
        lr: o.lr,
        momentum: o.momentum,
        weight_decay: o.weight_decay,
        init: crate::train::Init::He,
        augment: crate::augment::Augment::default(),
        patience: usize::MAX,
        max_drops: 0,
        seed: o.seed as u64,
    };
    let plan = Plan {
        classes: classes.to_vec(),
        depth,
        frozen,
        train_images: train.len(),
        held_out: held.len(),
        batch,
        epochs,
        memory,
        budget_mb: o.budget_mb,
    };
    let pca = train.pca();
    Ok(Run {
        model,
        data: crate::train::Data {
            train,
            val: held,
            pca,
        },
        state: crate::train::State::new(recipe),
        plan,
    })
}

/// A fine-tuning run the page advances a few steps per request: [`prepare`]'s run on the
/// CPU (one thread, as in the browser) with the plan's layers frozen.
pub fn session(
    base: &Model,
    classes: &[String],
    photos: Vec<(image::RgbImage, usize)>,
    depth: Depth,
    o: &Options,
) -> Result<(crate::train::session::RunSession<Photos>, Plan)> {
    let run = prepare(base, classes, photos, depth, o)?;
    let mut engine = crate::train::Engine::cpu(run.model.clone(), None, run.state.sgd(), 1)?;
    engine.set_frozen(&run.plan.frozen)?;
    Ok((
        crate::train::session::RunSession {
            arch: run.model.arch.clone(),
            data: run.data,
            state: run.state,
            engine,
        },
        run.plan,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_head_keeps_the_body_and_names_the_classes() {
        let m = Model::random(crate::model::mini(), 1).unwrap();
        let classes = vec!["cat".to_string(), "dog".into(), "bird".into()];
        let f = with_new_head(&m, &classes, 2).unwrap();
        assert_eq!(f.weight("fc8").unwrap().shape, vec![3, 1024]);
        assert_eq!(f.params["conv1.weight"], m.params["conv1.weight"]);
        assert_eq!(f.params["fc7.bias"], m.params["fc7.bias"]);
        assert_eq!(f.arch.num_classes().unwrap(), 3);
        assert_eq!(crate::labels::name(&f.arch.labels, 1), "dog");
        assert!(matches!(
            with_new_head(&m, &classes[..1], 2),
            Err(Error::Training(_))
        ));
    }

    #[test]
    fn photos_hold_out_per_class_and_crop_inside() {
        let pp = crate::model::mini().preprocess;
        let img = |v: u8| image::RgbImage::from_fn(50, 40, |x, _| image::Rgb([v, x as u8, 0]));
        let list = vec![
            (img(1), 0),
            (img(2), 0),
            (img(3), 0),
            (img(4), 1),
            (img(5), 1),
        ];
        let mut p = Photos::new(list, &pp).unwrap();
        assert_eq!(p.side, 37);
        let held = p.split_held_out(3);
        // class 0 has 3 photos: its third is held out; class 1 has 2: none
        assert_eq!(held.labels, vec![0]);
        assert_eq!(p.labels, vec![0, 0, 1, 1]);
        let x = p.batch(&[0, 3], &pp, None).unwrap();
        assert_eq!(x.shape, vec![2, 3, 32, 32]);
        let aug = crate::augment::Augment::default();
        let pca = p.pca();
        let y = p.batch(&[0, 3], &pp, Some((&aug, &pca, 7))).unwrap();
        assert_eq!(y.shape, x.shape);
        assert!(y.data.iter().all(|v| v.is_finite()));
        assert!(matches!(p.batch(&[9], &pp, None), Err(Error::Training(_))));
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
        assert!(matches!(
            largest_batch(&m, 500_000_000, 256),
            Err(Error::Training(_))
        ));
    }
}
