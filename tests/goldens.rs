//! Bit-for-bit goldens of the reference and fast CPU backends, recorded before the redesign
//! (issue 17) moved any code: every layer's eval-mode output, a training step's loss and
//! gradients, and a short run of the training loop (weights, momentum and schedule after
//! it), on the committed fixtures and the embedded model. A move or merge must leave every
//! bit as it was, so the comparison has no tolerance: each tensor is compared by its shape,
//! an FNV-1a hash of its f32 bit patterns, its f64 sum and its first values (the latter two
//! say how far off a changed tensor is).
//!
//! The fast backend's GEMM is `matrixmultiply`, which picks its micro-kernel at run time
//! (AVX2+FMA here): other kernels round differently, so its goldens are compared only where
//! the CPU offers the same features the goldens were recorded with (the reference backend's
//! are compared everywhere). `ALEXNET_BLESS_GOLDENS=1` rewrites `fixtures/goldens.json`:
//! only ever on the code before a change that must not move numbers.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{block_on, random_input, read_npy};

use alexnet::augment::Augment;
use alexnet::cpu::FastCpu;
use alexnet::data::Images;
use alexnet::model::{self, Arch};
use alexnet::model::{Model, Params};
use alexnet::tensor::Tensor;
use alexnet::train::{self, Data, Engine, EpochLog, Hooks, Init, Progress, Recipe, State};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Mutex;

/// Blessing rewrites one file from three tests.
static BLESS: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden_path() -> PathBuf {
    root().join("fixtures/goldens.json")
}

/// The CPU features `matrixmultiply`'s kernel choice depends on.
fn gemm_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let mut f = vec!["x86_64"];
        if std::is_x86_feature_detected!("avx") {
            f.push("avx");
        }
        if std::is_x86_feature_detected!("avx2") {
            f.push("avx2");
        }
        if std::is_x86_feature_detected!("fma") {
            f.push("fma");
        }
        f.join("+")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

fn fnv1a(data: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in data {
        for b in v.to_bits().to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn digest(t: &Tensor) -> Value {
    json!({
        "shape": t.shape,
        "fnv1a": fnv1a(&t.data),
        // as exact strings: JSON numbers would round-trip through a float parse
        "sum": format!("{:?}", t.data.iter().map(|&v| v as f64).sum::<f64>()),
        "first": t.data.iter().take(4).map(|v| format!("{v:?}")).collect::<Vec<_>>(),
    })
}

fn digest_params(p: &Params) -> Value {
    Value::Object(p.iter().map(|(k, t)| (k.clone(), digest(t))).collect())
}

fn digest_layers(model: &Model, outs: &[Tensor]) -> Value {
    Value::Object(
        model
            .layers()
            .iter()
            .zip(outs)
            .map(|(l, t)| (l.name().to_string(), digest(t)))
            .collect(),
    )
}

/// The models: a seeded random `mini`, the three ONNX fixtures (with their own inputs) and
/// the embedded Fashion-MNIST model.
fn cases() -> Vec<(&'static str, Model, Tensor)> {
    let onnx = root().join("fixtures/onnx");
    let mut out = Vec::new();
    let mini = Model::random(model::mini(), 3).expect("mini");
    let x = random_input(&mini.arch, 2, 11);
    out.push(("mini-random", mini, x));
    for name in ["mini-bvlc", "mini-tv", "mini-misc"] {
        let m = alexnet::io::load_path(&onnx.join(format!("{name}.onnx"))).expect(name);
        // the fixture's own input (a batch of two)
        let x = read_npy(&onnx.join(format!("{name}-input.npy")));
        out.push((name, m, x));
    }
    let embedded =
        alexnet::io::load_path(&root().join("www/models/mini-fashion.safetensors")).expect("emb");
    let x = random_input(&embedded.arch, 2, 5);
    out.push(("mini-fashion", embedded, x));
    out
}

fn labels_for(arch: &Arch, n: usize) -> Vec<usize> {
    let k = arch.num_classes().expect("classes");
    (0..n).map(|i| (i * 7 + 3) % k).collect()
}

/// The reference backend: every layer's eval output and `loss_and_grads`.
fn reference_goldens() -> Value {
    let mut all = Map::new();
    for (name, m, x) in cases() {
        let outs = m
            .forward_all(&x, alexnet::model::Mode::Eval)
            .expect("ref forward");
        let labels = labels_for(&m.arch, x.shape[0]);
        let (loss, grads) = m.loss_and_grads(&x, &labels, 42).expect("ref grads");
        all.insert(
            name.into(),
            json!({
                "forward_all": digest_layers(&m, &outs),
                "loss": loss.to_bits(),
                "grads": digest_params(&grads),
            }),
        );
    }
    Value::Object(all)
}

/// The fast backend at 1 and 2 threads: forward (fused) logits, every layer's output, and
/// `loss_and_grads` (with and without the input gradient's pass).
fn fast_goldens() -> Value {
    let mut all = Map::new();
    for (name, m, x) in cases() {
        let mut case = Map::new();
        for threads in [1usize, 2] {
            let mut f = FastCpu::with_threads(&m, threads).expect("fast");
            let logits = f.forward(&x).expect("fast forward");
            let outs = f.forward_all(&x).expect("fast forward_all");
            let labels = labels_for(&m.arch, x.shape[0]);
            let (loss, grads) = f.loss_and_grads(&x, &labels, 42).expect("fast grads");
            let trace = f.forward_train(&x, 42).expect("trace");
            let dout = Tensor::new(
                &trace.output().shape,
                (0..trace.output().len())
                    .map(|i| ((i % 13) as f32 - 6.0) / 16.0)
                    .collect(),
            )
            .expect("dout");
            let (bgrads, dx) = f.backward(&trace, &dout, true).expect("backward");
            case.insert(
                format!("threads{threads}"),
                json!({
                    "logits": digest(&logits),
                    "forward_all": digest_layers(&m, &outs),
                    "loss": loss.to_bits(),
                    "grads": digest_params(&grads),
                    "backward_grads": digest_params(&bgrads),
                    "backward_dx": dx.as_ref().map(digest),
                }),
            );
        }
        all.insert(name.into(), Value::Object(case));
    }
    Value::Object(all)
}

struct Record(Vec<Value>);
impl Hooks for Record {
    fn progress(&mut self, p: &Progress) {
        self.0.push(json!({"step_loss": p.loss.to_bits()}));
    }
    fn epoch(&mut self, log: &EpochLog) {
        self.0.push(json!({
            "epoch": log.epoch,
            "lr": log.lr.to_bits(),
            "train_loss": log.train_loss.to_bits(),
            "val_top1_err": log.val_top1_err.to_bits(),
            "val_top5_err": log.val_top5_err.to_bits(),
        }));
    }
    fn checkpoint(&mut self, _: &Model, _: &Params, state: &State) -> alexnet::Result<()> {
        self.0.push(json!({"checkpoint_at": state.step}));
        Ok(())
    }
}

/// Three epochs of the training loop (the schedule included: patience 1 lets the rate
/// drop) on 48 of the shipped Fashion-MNIST training images, fast CPU backend, 2 threads.
fn training_loop_golden() -> Value {
    let dir = root().join("www/data/fashion-mnist");
    let mut images = Images::fashion_mnist(&dir, true).expect("fashion-mnist subset");
    let keep = images.len() - 48;
    let mut train_set = images.split_off(keep).expect("split");
    let val = train_set.split_off(16).expect("val");
    let recipe = Recipe {
        epochs: 3,
        batch: 8,
        init: Init::He,
        augment: Augment::default(),
        patience: 1,
        seed: 9,
        ..Recipe::default()
    };
    let arch = model::mini();
    let m = train::init_model(arch.clone(), recipe.init, recipe.seed).expect("init");
    let pca = train_set.pca();
    let data = Data {
        train: train_set,
        val,
        pca,
    };
    let mut state = State::new(recipe);
    let mut engine = Engine::cpu(m, None, state.sgd(), 2).expect("engine");
    let mut rec = Record(Vec::new());
    block_on(train::run(
        &mut engine,
        &arch,
        &data,
        &mut state,
        &train::Sitting::whole(),
        &mut rec,
    ))
    .expect("run");
    let model = block_on(engine.model()).expect("model");
    let momentum = block_on(engine.velocities()).expect("momentum");
    json!({
        "events": rec.0,
        "step": state.step,
        "lr": state.lr.to_bits(),
        "weights": digest_params(&model.params),
        "momentum": digest_params(&momentum),
    })
}

fn load() -> Value {
    let text = std::fs::read_to_string(golden_path()).expect("fixtures/goldens.json");
    serde_json::from_str(&text).expect("goldens json")
}

/// Every leaf where `got` and `want` differ, with its path.
fn diff(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => diff(&format!("{path}/{k}"), gv, wv, out),
                    None => out.push(format!("{path}/{k}: missing")),
                }
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{path}/{k}: not in the goldens"));
            }
        }
        (g, w) if g != w => out.push(format!("{path}: got {g} want {w}")),
        _ => {}
    }
}

fn check(section: &str, got: Value) {
    if std::env::var_os("ALEXNET_BLESS_GOLDENS").is_some() {
        let _guard = BLESS.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = if golden_path().exists() {
            load()
        } else {
            json!({})
        };
        all[section] = got;
        all["gemm_features"] = json!(gemm_features());
        let text = serde_json::to_string_pretty(&all).expect("json");
        std::fs::write(golden_path(), text + "\n").expect("write goldens");
        return;
    }
    let want = &load()[section];
    let mut out = Vec::new();
    diff(section, &got, want, &mut out);
    assert!(
        out.is_empty(),
        "{} values differ from the goldens (first 20):\n{}",
        out.len(),
        out.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn fast_comparable() -> bool {
    if std::env::var_os("ALEXNET_BLESS_GOLDENS").is_some() {
        return true;
    }
    let recorded = load()["gemm_features"].as_str().map(str::to_string);
    if recorded.as_deref() != Some(gemm_features().as_str()) {
        eprintln!(
            "fast-backend goldens were recorded on {recorded:?}, this CPU is {}: skipped",
            gemm_features()
        );
        return false;
    }
    true
}

#[test]
fn reference_backend_is_bit_identical() {
    check("reference", reference_goldens());
}

#[test]
fn fast_backend_is_bit_identical() {
    if fast_comparable() {
        check("fast", fast_goldens());
    }
}

#[test]
fn training_loop_is_bit_identical() {
    if fast_comparable() {
        check("training_loop", training_loop_golden());
    }
}

#[test]
fn a_changed_bit_is_caught() {
    let t = Tensor::new(&[3], vec![1.0, 2.0, 3.0]).expect("t");
    let mut u = t.clone();
    u.data[1] = f32::from_bits(u.data[1].to_bits() ^ 1);
    let mut out = Vec::new();
    diff("x", &digest(&u), &digest(&t), &mut out);
    assert!(out.iter().any(|d| d.contains("fnv1a")), "{out:?}");
}
