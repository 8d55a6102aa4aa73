//! Our CPU forward pass against onnxruntime's, on the same weights and inputs.
//!
//! - Small committed fixtures (fixtures/onnx/, tools/gen_fixtures.py): always run, so CI
//!   without the large files still checks numerics of every op (grouped conv, LRN, ceil and
//!   padded pooling, average pooling, Gemm transB 0/1 with alpha/beta, MatMul+Add, softmax).
//! - Full-size AlexNets (tools/gen_refs.py; ~700 MB, generated into a cache directory): the
//!   directory is read from `ALEXNET_REFS`. If it is unset or has no manifest the tests print
//!   a skip note, except when `CI=true`, where they fail.
//!
//! Every comparison prints the worst absolute error, where it is, and the reference's max-abs.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{read_npy, unravel};

use alexnet::model::Mode;
use alexnet::{Model, Tensor};
use std::path::{Path, PathBuf};

/// Allowed error, relative to the reference tensor's largest magnitude.
///
/// Both sides compute in f32 but sum in different orders (ORT's MLAS uses blocked,
/// vectorised GEMM/conv kernels; ours has its own blocking), so results differ by rounding
/// only. A dot product of K terms in f32 has a worst-case relative error of about K * 2^-24
/// of the sum of |terms| and typically sqrt(K) * 2^-24: for fc6's K = 9216 that is ~6e-6
/// typical, ~5e-4 worst case, and the errors of earlier layers are propagated (and somewhat
/// amplified by ReLU-gated, He-scaled layers) through up to 8 such layers. Measured worst
/// errors are ~1e-6 of max-abs (see the test output); 1e-4 leaves a wide margin for rounding
/// while any real bug (a wrong pad, a transposed weight, the LRN alpha convention, ceil vs
/// floor, a wrong flatten order) moves values by 1e-2 of max-abs or more.
const REF_RTOL: f32 = 1e-4;

/// Compares `got` with `want`; returns the error relative to max|want|, or a message.
fn compare(what: &str, got: &Tensor, want: &Tensor) -> Result<f32, String> {
    if got.shape != want.shape {
        return Err(format!(
            "{what}: shape {:?}, reference {:?}",
            got.shape, want.shape
        ));
    }
    let max_abs = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut worst = (0f32, 0usize);
    for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
        let e = (g - w).abs();
        let e = if e.is_nan() { f32::INFINITY } else { e }; // NaN on either side fails
        if e > worst.0 {
            worst = (e, i);
        }
    }
    let rel = worst.0 / max_abs.max(f32::MIN_POSITIVE);
    let i = worst.1;
    let line = format!(
        "{what}: worst |ours - ORT| = {:.3e} at {:?} (ours {}, ORT {}), max|ORT| = {:.4}, relative {:.2e} (tolerance {REF_RTOL:.0e})",
        worst.0,
        unravel(i, &want.shape),
        got.data.get(i).copied().unwrap_or(f32::NAN),
        want.data.get(i).copied().unwrap_or(f32::NAN),
        max_abs,
        rel
    );
    println!("{line}");
    if rel <= REF_RTOL {
        Ok(rel)
    } else {
        Err(line)
    }
}

fn manifest(dir: &Path) -> serde_json::Value {
    let p = dir.join("manifest.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks `model` on the manifest entry `entry`: the final output through `forward`, every
/// listed layer through one `forward_all`, and the first listed layer through `forward_to`.
/// Returns the failures (empty = pass) and the worst relative error.
fn check_model(
    label: &str,
    model: &Model,
    dir: &Path,
    entry: &serde_json::Value,
) -> (Vec<String>, f32) {
    let x = read_npy(&dir.join(entry["input"].as_str().unwrap()));
    let layers = entry["layers"].as_object().unwrap();
    let final_layer = entry["final"].as_str().unwrap();
    let mut fails = Vec::new();
    let mut worst = 0f32;
    let mut record = |r: Result<f32, String>| match r {
        Ok(e) => worst = worst.max(e),
        Err(m) => fails.push(m),
    };
    let t = std::time::Instant::now();
    let all = model
        .forward_all(&x, Mode::Eval)
        .unwrap_or_else(|e| panic!("{label}: forward_all: {e}"));
    println!(
        "{label}: forward_all of batch {} in {:.2?}",
        x.shape[0],
        t.elapsed()
    );
    for (layer, file) in layers {
        let want = read_npy(&dir.join(file.as_str().unwrap()));
        match model.arch.layer_index(layer) {
            Ok(i) => record(compare(&format!("{label} {layer}"), &all[i], &want)),
            Err(e) => record(Err(format!("{label}: {e}"))),
        }
    }
    let want = read_npy(&dir.join(layers[final_layer].as_str().unwrap()));
    let t = std::time::Instant::now();
    let out = model
        .forward(&x)
        .unwrap_or_else(|e| panic!("{label}: forward: {e}"));
    println!("{label}: forward in {:.2?}", t.elapsed());
    record(compare(
        &format!("{label} forward ({final_layer})"),
        &out,
        &want,
    ));
    if let Some((first, file)) = layers
        .iter()
        .min_by_key(|(l, _)| model.arch.layer_index(l).unwrap_or(usize::MAX))
    {
        let got = model
            .forward_to(&x, first)
            .unwrap_or_else(|e| panic!("{label}: forward_to: {e}"));
        let want = read_npy(&dir.join(file.as_str().unwrap()));
        record(compare(
            &format!("{label} forward_to({first})"),
            &got,
            &want,
        ));
    }
    (fails, worst)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx")
}

#[test]
fn small_fixtures_match_onnxruntime() {
    let dir = fixtures();
    let m = manifest(&dir);
    let models = m["models"].as_object().unwrap();
    assert!(models.len() >= 3);
    let mut fails = Vec::new();
    for (name, entry) in models {
        let model = alexnet::io::load_path(&dir.join(entry["onnx"].as_str().unwrap()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (f, worst) = check_model(name, &model, &dir, entry);
        println!("{name}: worst relative error {worst:.2e}");
        fails.extend(f);
    }
    assert!(
        fails.is_empty(),
        "mismatches against onnxruntime:\n{}",
        fails.join("\n")
    );
}

/// The check must be able to fail: a one-ulp-scale perturbation passes, a real one does not.
#[test]
fn comparison_detects_errors() {
    let want = Tensor::new(&[2, 3], vec![1.0, -4.0, 2.0, 0.5, 0.0, 3.0]).unwrap();
    let mut got = want.clone();
    got.data[4] += 4.0 * 1e-6;
    assert!(compare("tiny", &got, &want).is_ok());
    got.data[4] += 4.0 * 2e-4;
    let e = compare("big", &got, &want).unwrap_err();
    assert!(e.contains("[1, 1]"), "{e}");
    got.data[4] = f32::NAN;
    assert!(compare("nan", &got, &want).is_err());
    assert!(compare("shape", &Tensor::zeros(&[3, 2]), &want).is_err());
}

/// The full-size reference directory, or None (with a note) when it is absent outside CI.
fn refs_dir() -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match std::env::var_os("ALEXNET_REFS").map(PathBuf::from) {
        Some(d) if d.join("manifest.json").is_file() => Some(d),
        other => {
            let why = match other {
                Some(d) => format!("ALEXNET_REFS={} has no manifest.json", d.display()),
                None => "ALEXNET_REFS is not set".to_string(),
            };
            assert!(
                !ci,
                "CI=true but the full-size references are missing: {why}. \
                 Generate them with: export ALEXNET_REFS=\"$(tools/refs.sh | tail -n1)\""
            );
            println!("SKIPPED (full-size reference check): {why}; run tools/refs.sh and set ALEXNET_REFS");
            None
        }
    }
}

fn full_size(name: &str, file_key: &str, expect_family: alexnet::model::Family) {
    let Some(dir) = refs_dir() else { return };
    let m = manifest(&dir);
    let entry = &m["models"][name];
    let file = dir.join(
        entry[file_key]
            .as_str()
            .unwrap_or_else(|| panic!("manifest: {name}.{file_key}")),
    );
    let t = std::time::Instant::now();
    let model = alexnet::io::load_path(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    println!("{name}: loaded {} in {:.2?}", file.display(), t.elapsed());
    assert_eq!(model.arch.family, expect_family, "{}", file.display());
    let (fails, worst) = check_model(&format!("{name} ({file_key})"), &model, &dir, entry);
    println!("{name} ({file_key}): worst relative error {worst:.2e}");
    assert!(
        fails.is_empty(),
        "mismatches against onnxruntime:\n{}",
        fails.join("\n")
    );
}

#[test]
fn full_bvlcalexnet_onnx_matches_onnxruntime() {
    full_size("bvlc", "onnx", alexnet::model::Family::Bvlc);
}

#[test]
fn full_torchvision_onnx_matches_onnxruntime() {
    full_size("torchvision", "onnx", alexnet::model::Family::Torchvision);
}

#[test]
fn full_torchvision_safetensors_matches_onnxruntime() {
    full_size(
        "torchvision",
        "safetensors",
        alexnet::model::Family::Torchvision,
    );
}

/// The fixture check catches the classic AlexNet porting bugs: the LRN alpha convention and
/// a transposed FC weight (square fc7, so the shapes still fit).
#[test]
fn fixture_check_catches_porting_bugs() {
    let dir = fixtures();
    let m = manifest(&dir);
    let entry = &m["models"]["mini-bvlc"];
    let good = alexnet::io::load_path(&dir.join("mini-bvlc.onnx")).unwrap();

    let mut lrn = good.clone();
    for l in lrn.arch.layers.iter_mut() {
        if let alexnet::model::Layer::Lrn(s) = l {
            s.alpha_mode = alexnet::model::LrnAlpha::Raw;
        }
    }
    let (fails, _) = check_model("mini-bvlc with alpha not divided by n", &lrn, &dir, entry);
    assert!(fails.iter().any(|f| f.contains("norm1")), "{fails:?}");

    let mut tr = good.clone();
    let w = tr.params.get_mut("fc7.weight").unwrap();
    let n = w.shape[0];
    let orig = w.data.clone();
    for i in 0..n {
        for j in 0..n {
            w.data[i * n + j] = orig[j * n + i];
        }
    }
    let (fails, _) = check_model("mini-bvlc with fc7 transposed", &tr, &dir, entry);
    assert!(fails.iter().any(|f| f.contains("fc7")), "{fails:?}");
    assert!(!fails.iter().any(|f| f.contains("fc6")), "{fails:?}");
}

/// Whether a GPU adapter exists; under CI=true (where build.sh installs Mesa's lavapipe) its
/// absence is a failure, never a silent skip.
fn gpu_available() -> bool {
    let found = !alexnet::gpu::native_adapters().is_empty();
    if !found {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no GPU adapter: install mesa-vulkan-drivers"
        );
        println!("SKIPPED (--backend gpu): no GPU adapter on this machine");
    }
    found
}

/// `alexnet run` end to end (the command a person types), on the full-size files and on
/// every backend: the .npy it writes equals onnxruntime's output, for the final layer and
/// for `--layer`.
#[test]
fn cli_run_matches_onnxruntime() {
    let Some(dir) = refs_dir() else { return };
    let m = manifest(&dir);
    let out_dir = std::env::temp_dir().join(format!("alexnet-ref-cli-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut fails = Vec::new();
    for (name, file_key, layer, backend) in [
        ("bvlc", "onnx", None, "ref"),
        ("bvlc", "onnx", Some("fc7"), "ref"),
        ("torchvision", "onnx", None, "ref"),
        ("torchvision", "safetensors", Some("pool5"), "ref"),
        ("bvlc", "onnx", None, "cpu"),
        ("torchvision", "safetensors", None, "cpu"),
        ("bvlc", "onnx", None, "gpu"),
        ("bvlc", "onnx", Some("pool2"), "gpu"),
        ("torchvision", "onnx", None, "gpu"),
    ] {
        if backend == "gpu" && !gpu_available() {
            continue;
        }
        let entry = &m["models"][name];
        let model_file = dir.join(entry[file_key].as_str().unwrap());
        let input = dir.join(entry["input"].as_str().unwrap());
        let layer_name = layer.unwrap_or_else(|| entry["final"].as_str().unwrap());
        let output = out_dir.join(format!("{name}-{file_key}-{layer_name}-{backend}.npy"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alexnet"));
        cmd.arg("run").arg("--model").arg(&model_file);
        cmd.args(["--backend", backend]);
        cmd.arg("--input").arg(&input).arg("--output").arg(&output);
        if let Some(l) = layer {
            cmd.args(["--layer", l]);
        }
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "alexnet run failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let want = read_npy(&dir.join(entry["layers"][layer_name].as_str().unwrap()));
        if let Err(e) = compare(
            &format!("alexnet run --backend {backend} {name} ({file_key}) {layer_name}"),
            &read_npy(&output),
            &want,
        ) {
            fails.push(e);
        }
    }
    std::fs::remove_dir_all(&out_dir).ok();
    assert!(fails.is_empty(), "mismatches:\n{}", fails.join("\n"));
}
