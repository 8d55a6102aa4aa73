//! The trainer (`alexnet::train`) on a tiny AlexNet-shaped net (conv, ReLU, LRN, overlapping
//! max-pool, grouped conv, dropout, three fully connected layers) and synthetic images:
//! the SGD step against an independent f64 computation of the paper's rule, the paper's
//! initialisation, a loss that falls until a small batch is learned by heart, checkpoints
//! that resume into exactly the uninterrupted run, the learning-rate schedule, and a
//! diverging run stopped with a clear error.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::block_on;

use alexnet::augment::{Augment, Pca};
use alexnet::data::Images;
use alexnet::error::Error;
use alexnet::io::safetensors::{load_checkpoint, save_checkpoint};
use alexnet::model::{self, Arch, Family, Layer, Pads};
use alexnet::model::{Model, Params};
use alexnet::reference::Sgd;
use alexnet::tensor::{Rng, Tensor};
use alexnet::train::{self, Data, Engine, EpochLog, Hooks, Init, Progress, Recipe, Sitting, State};

/// `model::mini()` narrowed, without norm2 and pool2, conv1 at stride 2 and conv2 3x3:
/// 3x32x32 -> conv1 8x16x16 -> LRN -> pool 8x7x7 -> conv2 (groups 2) 16x7x7 -> conv3 ->
/// conv4 (groups 2) -> conv5 (groups 2) -> pool 16x3x3 -> fc6 32 -> fc7 32 -> fc8 10, with
/// dropout on fc6 and fc7 (mini's LRN, pools, groups, dropout and preprocessing).
fn tiny() -> Arch {
    // (name, in, out, kernel, stride), padded kernel / 2
    let convs = [
        ("conv1", 3, 8, 5, 2),
        ("conv2", 8, 16, 3, 1),
        ("conv3", 16, 16, 3, 1),
        ("conv4", 16, 16, 3, 1),
        ("conv5", 16, 16, 3, 1),
    ];
    let fcs = [("fc6", 144, 32), ("fc7", 32, 32), ("fc8", 32, 10)];
    let mut arch = model::mini();
    arch.family = Family::Custom;
    arch.layers
        .retain(|l| !matches!(l.name(), "norm2" | "pool2"));
    for layer in &mut arch.layers {
        match layer {
            Layer::Conv(c) => {
                let &(_, cin, cout, k, s) = convs.iter().find(|t| t.0 == c.name).unwrap();
                (c.in_channels, c.out_channels) = (cin, cout);
                (c.kernel, c.stride, c.pads) = ([k, k], [s, s], Pads::same(k / 2));
            }
            Layer::Linear(l) => {
                let &(_, i, o) = fcs.iter().find(|t| t.0 == l.name).unwrap();
                (l.in_features, l.out_features) = (i, o);
            }
            _ => {}
        }
    }
    arch.validate().unwrap();
    arch
}

/// `n` 28x28 images of 10 classes: class `c` is a bright 6x6 square at a place of its own
/// on a noisy background (learnable, not trivial at init).
fn synthetic(n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed);
    let mut pixels = vec![0u8; n * 28 * 28];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = (rng.next_u64() % 10) as usize;
        labels.push(c as u8);
        let img = &mut pixels[i * 784..(i + 1) * 784];
        for p in img.iter_mut() {
            *p = (rng.next_u64() % 40) as u8;
        }
        let (x0, y0) = (2 + (c % 5) * 5, 4 + (c / 5) * 12);
        for y in y0..y0 + 6 {
            for x in x0..x0 + 6 {
                img[y * 28 + x] = 230;
            }
        }
    }
    Images {
        height: 28,
        width: 28,
        pixels,
        labels,
    }
}

#[test]
fn paper_init_puts_ones_in_the_papers_biases() {
    let m = train::init_model(tiny(), Init::Paper { std: 0.01 }, 3).unwrap();
    for (layer, one) in [
        ("conv1", false),
        ("conv2", true),
        ("conv3", false),
        ("conv4", true),
        ("conv5", true),
        ("fc6", true),
        ("fc7", true),
        ("fc8", false),
    ] {
        let b = m.bias(layer).unwrap();
        let want = if one { 1.0 } else { 0.0 };
        assert!(b.data.iter().all(|&v| v == want), "{layer} bias");
        let w = m.weight(layer).unwrap();
        let std = (w.data.iter().map(|v| v * v).sum::<f32>() / w.data.len() as f32).sqrt();
        assert!((0.007..0.013).contains(&std), "{layer} weight std {std}");
    }
    let he = train::init_model(tiny(), Init::He, 3).unwrap();
    let w = he.weight("fc6").unwrap();
    let std = (w.data.iter().map(|v| v * v).sum::<f32>() / w.data.len() as f32).sqrt();
    let want = (2.0f32 / 144.0).sqrt();
    assert!((std / want - 1.0).abs() < 0.1, "He std {std} vs {want}");
    assert!(he.bias("fc6").unwrap().data.iter().all(|&b| b == 0.0));
}

/// Two steps of the CPU engine against the paper's rule computed independently in f64 from
/// the reference's gradients: `v <- m v - wd lr w - lr g; w <- w + v` (the second step has
/// momentum).
#[test]
fn sgd_steps_match_the_papers_rule_computed_independently() {
    let arch = tiny();
    let m0 = train::init_model(arch.clone(), Init::He, 5).unwrap();
    let data = synthetic(8, 1);
    let idx: Vec<usize> = (0..8).collect();
    let x = data.batch(&idx, 32, &arch.preprocess, None).unwrap();
    let labels = data.label_vec(&idx);
    let sgd = Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let mut engine = Engine::cpu(m0.clone(), None, sgd, 1).unwrap();
    block_on(engine.step(&x, &labels, 11)).unwrap();
    block_on(engine.step(&x, &labels, 12)).unwrap();
    let got = block_on(engine.model()).unwrap();

    let (lr, mom, wd) = (sgd.lr as f64, sgd.momentum as f64, sgd.weight_decay as f64);
    let mut w: Vec<(String, Vec<f64>)> = m0
        .params
        .iter()
        .map(|(k, t)| (k.clone(), t.data.iter().map(|&v| v as f64).collect()))
        .collect();
    let mut v: Vec<Vec<f64>> = w.iter().map(|(_, d)| vec![0.0; d.len()]).collect();
    for seed in [11, 12] {
        let params = w
            .iter()
            .map(|(k, d)| {
                let shape = m0.params[k].shape.clone();
                (
                    k.clone(),
                    Tensor::new(&shape, d.iter().map(|&x| x as f32).collect()).unwrap(),
                )
            })
            .collect();
        let model = Model::new(arch.clone(), params).unwrap();
        let (_, grads) = model.loss_and_grads(&x, &labels, seed).unwrap();
        for ((k, wk), vk) in w.iter_mut().zip(v.iter_mut()) {
            for ((wi, vi), &gi) in wk.iter_mut().zip(vk.iter_mut()).zip(&grads[k].data) {
                *vi = mom * *vi - wd * lr * *wi - lr * gi as f64;
                *wi += *vi;
            }
        }
    }
    let mut moved = 0.0f64;
    for (k, want) in &w {
        let g = &got.params[k].data;
        for (i, (&a, &b)) in g.iter().zip(want).enumerate() {
            // f32 steps from the fast backend's gradients (f32 sums in another order than
            // the reference's f64) against f64: the difference is lr times the gradient
            // error, ~1e-6 relative to a weight
            assert!(
                (a as f64 - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "{k}[{i}]: engine {a}, paper's rule {b}"
            );
        }
        moved += g
            .iter()
            .zip(&m0.params[k].data)
            .map(|(a, b)| ((a - b) as f64).abs())
            .sum::<f64>();
    }
    assert!(moved > 1e-3, "the steps changed nothing");
}

struct Quiet {
    checkpoints: Vec<Vec<u8>>,
    epochs: Vec<EpochLog>,
}
impl Hooks for Quiet {
    fn progress(&mut self, _: &Progress) {}
    fn epoch(&mut self, l: &EpochLog) {
        self.epochs.push(l.clone());
    }
    fn checkpoint(
        &mut self,
        model: &Model,
        momentum: &Params,
        state: &State,
    ) -> alexnet::error::Result<()> {
        let json = serde_json::to_string(state).unwrap();
        self.checkpoints
            .push(save_checkpoint(model, momentum, &json)?);
        Ok(())
    }
}
fn quiet() -> Quiet {
    Quiet {
        checkpoints: Vec::new(),
        epochs: Vec::new(),
    }
}

/// A fresh CPU run of `r` on `arch` (weights seeded with `seed`, one thread): the engine and
/// its state after `train::run` in `sitting`, and what the run returned.
fn fresh_run(
    arch: &Arch,
    data: &Data,
    r: Recipe,
    seed: u64,
    sitting: &Sitting,
    hooks: &mut Quiet,
) -> (Engine, State, alexnet::error::Result<()>) {
    let model = train::init_model(arch.clone(), r.init, seed).unwrap();
    let mut state = State::new(r);
    let mut engine = Engine::cpu(model, None, state.sgd(), 1).unwrap();
    let result = block_on(train::run(
        &mut engine,
        arch,
        data,
        &mut state,
        sitting,
        hooks,
    ));
    (engine, state, result)
}

/// `train::run` of `engine` from `state` to the end of its recipe in one sitting, quietly.
fn run_to_end(engine: &mut Engine, arch: &Arch, data: &Data, state: &mut State) {
    block_on(train::run(
        engine,
        arch,
        data,
        state,
        &Sitting::whole(),
        &mut quiet(),
    ))
    .unwrap();
}

/// Batch 16 at lr 0.02 from He initialisation, no augmentation and no plateau: a recipe
/// that learns the synthetic images by heart.
fn learn_by_heart() -> Recipe {
    Recipe {
        batch: 16,
        lr: 0.02,
        init: Init::He,
        augment: Augment::none(),
        patience: 1000,
        ..Recipe::default()
    }
}

fn no_pca() -> Pca {
    Pca {
        values: [0.0; 3],
        vectors: [[0.0; 3]; 3],
    }
}

#[test]
fn the_loss_falls_until_a_small_batch_is_learned_by_heart() {
    let arch = tiny();
    let data = Data {
        train: synthetic(16, 2),
        val: synthetic(16, 2),
        pca: no_pca(),
    };
    let recipe = Recipe {
        epochs: 400,
        ..learn_by_heart()
    };
    let mut hooks = quiet();
    fresh_run(&arch, &data, recipe, 1, &Sitting::whole(), &mut hooks)
        .2
        .unwrap();
    let first = hooks.epochs[0].train_loss;
    let last = hooks.epochs.last().unwrap().train_loss;
    // dropout keeps the training loss noisy; the mean of the last 50 steps against the first
    let tail: f64 = hooks.epochs[350..]
        .iter()
        .map(|e| e.train_loss)
        .sum::<f64>()
        / 50.0;
    assert!(
        tail < 0.25 * first,
        "loss {first} -> {last} (last 50 steps: {tail})"
    );
    // the validation set is the training batch, seen without dropout: learned by heart
    assert_eq!(
        hooks.epochs.last().unwrap().val_top1_err,
        0.0,
        "{:?}",
        hooks.epochs.last()
    );
}

fn resume_recipe() -> Recipe {
    Recipe {
        epochs: 2,
        batch: 8,
        init: Init::He,
        ..Recipe::default()
    }
}

/// `fresh_run` of `r` on `tiny()` and `resume_data()`, weights from seed 7.
fn short_run(
    r: Recipe,
    sitting: &Sitting,
    hooks: &mut Quiet,
) -> (Engine, State, alexnet::error::Result<()>) {
    fresh_run(&tiny(), &resume_data(), r, 7, sitting, hooks)
}

fn resume_data() -> Data {
    let train = synthetic(40, 3);
    let pca = train.pca();
    Data {
        train,
        val: synthetic(8, 4),
        pca,
    }
}

#[test]
fn a_resumed_run_takes_exactly_the_uninterrupted_runs_steps() {
    let arch = tiny();
    let data = resume_data();
    let r = resume_recipe();
    let (mut engine, state, result) =
        fresh_run(&arch, &data, r.clone(), 7, &Sitting::whole(), &mut quiet());
    result.unwrap();
    let want = block_on(engine.model()).unwrap();
    assert!(state.finished);
    assert_eq!(state.step, 10, "2 epochs of 5 batches");

    // 7 steps (into the second epoch), a checkpoint through the file format, then the rest
    let mut hooks = quiet();
    let seven = Sitting {
        max_steps: Some(7),
        ..Sitting::whole()
    };
    let (_, state, result) = fresh_run(&arch, &data, r, 7, &seven, &mut hooks);
    result.unwrap();
    assert!(!state.finished);
    let (m, momentum, json) = load_checkpoint(hooks.checkpoints.last().unwrap()).unwrap();
    let mut state: State = serde_json::from_str(&json).unwrap();
    assert_eq!((state.epoch, state.batch_in_epoch, state.step), (1, 2, 7));
    let mut engine = Engine::cpu(m, Some(momentum), state.sgd(), 1).unwrap();
    run_to_end(&mut engine, &arch, &data, &mut state);
    let got = block_on(engine.model()).unwrap();
    for (k, t) in &want.params {
        assert_eq!(got.params[k].data, t.data, "{k} differs after resuming");
    }
}

#[test]
fn a_plateau_divides_the_learning_rate_and_the_last_one_ends_the_run() {
    // lr 0: the weights never change, so the validation error never improves
    let r = Recipe {
        epochs: 20,
        lr: 0.0,
        patience: 1,
        max_drops: 1,
        ..resume_recipe()
    };
    let (_, state, result) = short_run(r, &Sitting::whole(), &mut quiet());
    result.unwrap();
    assert!(state.finished);
    assert_eq!(state.drops, 1);
    // epoch 1 sets the best, epoch 2 is the first plateau (divide), epoch 3 the last
    assert_eq!(state.history.len(), 3, "{:?}", state.history);
}

#[test]
fn a_diverging_run_stops_with_a_clear_error() {
    let r = Recipe {
        lr: 1e12,
        epochs: 5,
        ..resume_recipe()
    };
    let mut hooks = quiet();
    let every_step = Sitting {
        checkpoint_every: 1,
        ..Sitting::whole()
    };
    let err = short_run(r, &every_step, &mut hooks).2.unwrap_err();
    assert!(matches!(err, Error::Training(_)), "{err}");
    assert!(
        err.to_string().contains("diverged") || err.to_string().contains("the loss became"),
        "{err}"
    );
    // every checkpoint written holds finite weights
    for c in &hooks.checkpoints {
        let (m, _, _) = load_checkpoint(c).unwrap();
        assert!(m
            .params
            .values()
            .all(|t| t.data.iter().all(|v| v.is_finite())));
    }
}

/// Fine-tuning: a trained tiny net gets a new two-class head; trained at head depth only its
/// body stays bit for bit, the new head learns the two classes.
#[test]
fn fine_tuning_the_head_keeps_the_body_and_learns_new_classes() {
    use alexnet::finetune::{with_new_head, Depth};
    let arch = tiny();
    // the body: a short run on all ten classes
    let pre = Recipe {
        epochs: 10,
        ..learn_by_heart()
    };
    let pre_data = Data {
        train: synthetic(160, 6),
        val: synthetic(16, 7),
        pca: no_pca(),
    };
    let (mut engine, _, result) =
        fresh_run(&arch, &pre_data, pre, 9, &Sitting::whole(), &mut quiet());
    result.unwrap();
    let base = block_on(engine.model()).unwrap();
    let classes = vec!["left".to_string(), "right".to_string()];
    let model = with_new_head(&base, &classes, 3).unwrap();
    // two classes: the squares of classes 0 and 4 of `synthetic` (0 -> left, 4 -> right)
    let mut imgs = synthetic(400, 5);
    let keep: Vec<usize> = (0..imgs.len())
        .filter(|&i| [0, 4].contains(&imgs.labels[i]))
        .collect();
    let n = 28 * 28;
    imgs = Images {
        height: 28,
        width: 28,
        pixels: keep
            .iter()
            .flat_map(|&i| imgs.pixels[i * n..(i + 1) * n].to_vec())
            .collect(),
        labels: keep.iter().map(|&i| (imgs.labels[i] == 4) as u8).collect(),
    };
    let val = imgs.split_off(16).unwrap();
    let data = Data {
        train: imgs,
        val,
        pca: no_pca(),
    };
    let r = Recipe {
        epochs: 15,
        batch: 8,
        lr: 0.01,
        init: Init::He,
        augment: Augment::none(),
        patience: 1000,
        ..Recipe::default()
    };
    let mut state = State::new(r);
    let mut engine = Engine::cpu(model.clone(), None, state.sgd(), 1).unwrap();
    engine.set_frozen(&Depth::Head.frozen(&model)).unwrap();
    run_to_end(&mut engine, &model.arch, &data, &mut state);
    let after = block_on(engine.model()).unwrap();
    for (k, t) in &model.params {
        assert_eq!(after.params[k].data == t.data, !k.starts_with("fc8"), "{k}");
    }
    let last = state.history.last().unwrap();
    assert!(last.val_top1_err <= 0.125, "held-out error {last:?}");
    assert_err!(
        engine.set_frozen(&["nope".to_string()]),
        Error::NoSuchLayer(_)
    );
}
