//! safetensors load/save: round trips, dtype conversion, architecture detection, and one
//! test per way a file can be wrong (each must give its error variant, never a panic).
#![cfg(not(target_arch = "wasm32"))]

use alexnet::io::safetensors::{self as st, ARCH_KEY};
use alexnet::model::{self, Family};
use alexnet::tensor::Rng;
use alexnet::{Error, Model};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::HashMap;
use std::time::Instant;

fn mini(seed: u64) -> Model {
    Model::random(model::mini(), seed).unwrap()
}

/// Raw little-endian bytes for each of `model`'s tensors, converted by `enc`.
fn encode(
    model: &Model,
    width: usize,
    enc: impl Fn(f32) -> Vec<u8>,
) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    model
        .params
        .iter()
        .map(|(k, t)| {
            let mut b = Vec::with_capacity(t.len() * width);
            for &v in &t.data {
                b.extend(enc(v));
            }
            (k.clone(), t.shape.clone(), b)
        })
        .collect()
}

/// A safetensors file made by the crate itself from `(name, shape, bytes)` of one dtype.
fn file(
    tensors: &[(String, Vec<usize>, Vec<u8>)],
    dtype: Dtype,
    meta: Option<HashMap<String, String>>,
) -> Vec<u8> {
    let views = tensors
        .iter()
        .map(|(k, s, b)| (k.clone(), TensorView::new(dtype, s.clone(), b).unwrap()));
    safetensors::serialize(views, meta).unwrap()
}

fn arch_meta(arch: &alexnet::Arch) -> Option<HashMap<String, String>> {
    Some(HashMap::from([(
        ARCH_KEY.to_string(),
        serde_json::to_string(arch).unwrap(),
    )]))
}

fn f32_file(model: &Model, meta: Option<HashMap<String, String>>) -> Vec<u8> {
    file(
        &encode(model, 4, |v| v.to_le_bytes().to_vec()),
        Dtype::F32,
        meta,
    )
}

#[test]
fn mini_round_trips_bit_for_bit() {
    let m = mini(7);
    let bytes = st::save(&m).unwrap();
    let back = st::load(&bytes).unwrap();
    assert_eq!(back.arch, m.arch);
    assert_eq!(back.params.len(), m.params.len());
    for (k, t) in &m.params {
        let b = &back.params[k];
        assert_eq!(b.shape, t.shape, "{k}");
        assert!(
            b.data
                .iter()
                .zip(&t.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{k} differs after the round trip"
        );
    }
    // Also through the format sniffer.
    let again = alexnet::io::load_bytes(&bytes).unwrap();
    assert_eq!(again.params, m.params);
}

#[test]
fn saved_file_has_pt_format_and_arch_metadata() {
    let bytes = st::save(&mini(1)).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["format"], "pt");
    let arch: alexnet::Arch = serde_json::from_str(&meta[ARCH_KEY]).unwrap();
    assert_eq!(arch, model::mini());
}

#[test]
fn our_key_names_without_metadata_pick_the_one_builtin() {
    let m = mini(3);
    let back = st::load(&f32_file(&m, None)).unwrap();
    assert_eq!(back.arch.family, Family::Mini);
    assert_eq!(back.params, m.params);
}

#[test]
fn f16_and_bf16_are_converted() {
    let m = mini(11);
    for (dtype, enc, tol) in [
        (
            Dtype::F16,
            (|v: f32| half::f16::from_f32(v).to_le_bytes().to_vec()) as fn(f32) -> Vec<u8>,
            1e-3f32,
        ),
        (
            Dtype::BF16,
            |v: f32| half::bf16::from_f32(v).to_le_bytes().to_vec(),
            8e-3,
        ),
        (Dtype::F64, |v: f32| (v as f64).to_le_bytes().to_vec(), 0.0),
    ] {
        let width = if dtype == Dtype::F64 { 8 } else { 2 };
        let bytes = file(&encode(&m, width, enc), dtype, arch_meta(&m.arch));
        let back = st::load(&bytes).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        for (k, t) in &m.params {
            let b = &back.params[k];
            let worst = b
                .data
                .iter()
                .zip(&t.data)
                .map(|(x, y)| (x - y).abs() / y.abs().max(1e-2))
                .fold(0.0, f32::max);
            // f16 has 11 significant bits (relative step 2^-11 ~ 4.9e-4), bf16 8 (2^-8 ~ 3.9e-3);
            // round-to-nearest halves that; values under 1e-2 are compared absolutely.
            assert!(
                worst <= tol,
                "{dtype} {k}: worst relative difference {worst} > {tol}"
            );
        }
    }
}

#[test]
fn save_f16_rounds_each_value_to_nearest_half_and_keeps_the_arch() {
    let m = mini(13);
    let full = st::save(&m).unwrap();
    let bytes = st::save_f16(&m).unwrap();
    // The tensor data halves (the file is its 8-byte length, the JSON header, the data).
    let data32: usize = m.params.values().map(|t| t.len() * 4).sum();
    let (header32, _) = safetensors::SafeTensors::read_metadata(&full).unwrap();
    assert_eq!(full.len() - 8 - header32, data32);
    let (header, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(bytes.len() - 8 - header, data32 / 2);
    assert!(meta.tensors().values().all(|i| i.dtype == Dtype::F16));
    let back = st::load(&bytes).unwrap();
    assert_eq!(back.arch, m.arch);
    for (k, t) in &m.params {
        let b = &back.params[k];
        assert_eq!(b.shape, t.shape, "{k}");
        // Independent of the writer: the `half` crate's own round-to-nearest of each value.
        if let Some((i, (x, y))) = b
            .data
            .iter()
            .zip(&t.data)
            .enumerate()
            .find(|(_, (x, y))| x.to_bits() != half::f16::from_f32(**y).to_f32().to_bits())
        {
            panic!(
                "{k}[{i}]: read {x}, the nearest f16 of {y} is {}",
                half::f16::from_f32(*y)
            );
        }
    }
}

#[test]
fn save_f16_refuses_values_beyond_half_range() {
    let mut m = mini(13);
    m.params.get_mut("fc8.bias").unwrap().data[3] = 70_000.0;
    match st::save_f16(&m) {
        Err(Error::Safetensors(msg)) => {
            assert!(msg.contains("fc8.bias") && msg.contains("70000"), "{msg}")
        }
        other => panic!("expected a Safetensors error, got {other:?}"),
    }
    // f32 keeps it.
    assert_eq!(st::load(&st::save(&m).unwrap()).unwrap().params, m.params);
}

/// Random tensors with torchvision's AlexNet key names and shapes (61.1 M parameters,
/// 244 MB), no metadata: the key names alone must select the torchvision config.
#[test]
fn torchvision_key_names_select_torchvision() {
    let t0 = Instant::now();
    let mut rng = Rng::new(42);
    let tv = model::torchvision();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = tv
        .param_shapes()
        .into_iter()
        .map(|(k, s)| {
            let n: usize = s.iter().product();
            let mut b = Vec::with_capacity(n * 4);
            for _ in 0..n {
                b.extend_from_slice(&(rng.uniform() - 0.5).to_le_bytes());
            }
            (st::ours_to_torchvision(&k).unwrap(), s, b)
        })
        .collect();
    assert!(tensors.iter().any(|(k, _, _)| k == "features.10.weight"));
    assert!(tensors.iter().any(|(k, _, _)| k == "classifier.6.bias"));
    let bytes = file(&tensors, Dtype::F32, None);
    let t1 = Instant::now();
    let m = st::load(&bytes).unwrap();
    let t2 = Instant::now();
    assert_eq!(m.arch, tv);
    assert_eq!(m.arch.param_count(), 61_100_840);
    // Spot-check values: the first and last of fc6 (classifier.1) and conv1 (features.0).
    for (tvk, ours) in [
        ("classifier.1.weight", "fc6.weight"),
        ("features.0.bias", "conv1.bias"),
    ] {
        let (_, _, raw) = tensors.iter().find(|(k, _, _)| k == tvk).unwrap();
        let t = &m.params[ours];
        let first = f32::from_le_bytes(raw[0..4].try_into().unwrap());
        let last = f32::from_le_bytes(raw[raw.len() - 4..].try_into().unwrap());
        assert_eq!(
            (t.data[0], *t.data.last().unwrap()),
            (first, last),
            "{ours}"
        );
    }
    // And back out under torchvision names.
    let out = st::save_torchvision(&m).unwrap();
    let t3 = Instant::now();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&out)
        .unwrap()
        .names()
        .into_iter()
        .map(String::from)
        .collect();
    assert!(
        names.contains(&"features.0.weight".to_string())
            && names.contains(&"classifier.6.bias".to_string())
    );
    assert!(!names
        .iter()
        .any(|n| n.starts_with("conv") || n.starts_with("fc")));
    let again = st::load(&out).unwrap();
    assert_eq!(again.params, m.params);
    eprintln!(
        "torchvision-size file ({} MB): build {:?}, load {:?}, save_torchvision {:?}, reload {:?}",
        bytes.len() / 1_000_000,
        t1 - t0,
        t2 - t1,
        t3 - t2,
        t3.elapsed()
    );
}

#[test]
fn torchvision_mapping_and_module_prefix() {
    for (torch, ours) in [
        ("features.0.weight", Some("conv1.weight")),
        ("features.10.bias", Some("conv5.bias")),
        ("module.classifier.4.weight", Some("fc7.weight")),
        ("classifier.6.bias", Some("fc8.bias")),
        ("features.1.weight", None),
        ("features.0.running_mean", None),
    ] {
        assert_eq!(st::torchvision_to_ours(torch).as_deref(), ours, "{torch}");
    }
    for (ours, torch) in [
        ("conv4.weight", Some("features.8.weight")),
        ("fc6.bias", Some("classifier.1.bias")),
        ("norm1.weight", None),
    ] {
        assert_eq!(st::ours_to_torchvision(ours).as_deref(), torch, "{ours}");
    }
}

#[test]
fn save_torchvision_refuses_other_families() {
    match st::save_torchvision(&mini(1)) {
        Err(Error::Safetensors(msg)) => assert!(msg.contains("mini"), "{msg}"),
        other => panic!("expected Error::Safetensors, got {other:?}"),
    }
}

#[test]
fn bvlc_shaped_file_without_metadata_is_ambiguous() {
    // paper and bvlc have identical tensors: refusing is better than guessing the wrong
    // preprocessing. Uses zero tensors of the real shapes (cheap to make).
    let tensors: Vec<_> = model::bvlc()
        .param_shapes()
        .into_iter()
        .map(|(k, s)| {
            let n: usize = s.iter().product();
            (k, s, vec![0u8; n * 4])
        })
        .collect();
    match st::load(&file(&tensors, Dtype::F32, None)) {
        Err(Error::Safetensors(msg)) => {
            assert!(msg.contains("ambiguous") && msg.contains(ARCH_KEY), "{msg}")
        }
        other => panic!(
            "expected Error::Safetensors, got {:?}",
            other.map(|m| m.arch.family)
        ),
    }
}

/// The variant `load` gave, with its message, for a readable failure report.
fn load_err(bytes: &[u8]) -> Error {
    match st::load(bytes) {
        Ok(m) => panic!("loaded a {} model from a bad file", m.arch.family.as_str()),
        Err(e) => e,
    }
}

#[test]
fn truncated_file_is_an_error() {
    let bytes = st::save(&mini(2)).unwrap();
    for cut in [0, 3, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        match load_err(&bytes[..cut]) {
            Error::Safetensors(msg) => assert!(msg.contains("not a valid safetensors"), "{msg}"),
            e => panic!("cut at {cut}: expected Error::Safetensors, got {e:?}"),
        }
    }
}

#[test]
fn header_length_past_the_end_is_an_error() {
    let mut bytes = st::save(&mini(2)).unwrap();
    let len = bytes.len() as u64;
    bytes[..8].copy_from_slice(&(len * 2).to_le_bytes());
    assert!(matches!(load_err(&bytes), Error::Safetensors(_)));
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(load_err(&bytes), Error::Safetensors(_)));
}

#[test]
fn bad_json_header_is_an_error() {
    let header = b"{\"conv1.weight\": {\"dtype\": \"F32\", \"shape\": [1], ";
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    match load_err(&bytes) {
        Error::Safetensors(msg) => assert!(msg.contains("JSON"), "{msg}"),
        e => panic!("expected Error::Safetensors, got {e:?}"),
    }
    // Valid JSON but a bad architecture in the metadata.
    let m = mini(2);
    let meta = Some(HashMap::from([(
        ARCH_KEY.to_string(),
        "{\"family\": \"vgg\"}".to_string(),
    )]));
    match load_err(&f32_file(&m, meta)) {
        Error::Safetensors(msg) => assert!(msg.contains(ARCH_KEY), "{msg}"),
        e => panic!("expected Error::Safetensors, got {e:?}"),
    }
}

#[test]
fn integer_dtype_is_refused_naming_the_tensor() {
    let m = mini(4);
    let mut tensors = encode(&m, 4, |v| v.to_le_bytes().to_vec());
    // Same byte size: reinterpret conv3.bias as i32.
    let i = tensors
        .iter()
        .position(|(k, _, _)| k == "conv3.bias")
        .unwrap();
    let (k, s, b) = tensors.remove(i);
    let views: Vec<_> = tensors
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .chain(std::iter::once((
            k,
            TensorView::new(Dtype::I32, s, &b).unwrap(),
        )))
        .collect();
    let bytes = safetensors::serialize(views, arch_meta(&m.arch)).unwrap();
    match load_err(&bytes) {
        Error::Safetensors(msg) => {
            assert!(msg.contains("conv3.bias") && msg.contains("I32"), "{msg}")
        }
        e => panic!("expected Error::Safetensors, got {e:?}"),
    }
}

#[test]
fn wrong_shape_is_a_shape_error() {
    let mut m = mini(5);
    let t = m.params.get_mut("fc7.weight").unwrap();
    t.shape = vec![512, 2048]; // same count (1024 * 1024), wrong shape
    match load_err(&f32_file(&m, arch_meta(&model::mini()))) {
        Error::Shape {
            what,
            expected,
            got,
        } => {
            assert!(what.contains("fc7.weight"), "{what}");
            assert_eq!((expected, got), (vec![1024, 1024], vec![512, 2048]));
        }
        e => panic!("expected Error::Shape, got {e:?}"),
    }
}

#[test]
fn nan_weight_is_non_finite_error() {
    let mut m = mini(6);
    m.params.get_mut("conv2.weight").unwrap().data[17] = f32::NAN;
    m.params.get_mut("conv2.weight").unwrap().data[18] = f32::INFINITY;
    match load_err(&f32_file(&m, arch_meta(&m.arch))) {
        Error::NonFinite { name, count } => assert_eq!((name.as_str(), count), ("conv2.weight", 2)),
        e => panic!("expected Error::NonFinite, got {e:?}"),
    }
}

#[test]
fn unknown_keys_are_an_unknown_architecture() {
    let tensors = vec![
        ("encoder.weight".to_string(), vec![2, 2], vec![0u8; 16]),
        ("encoder.bias".to_string(), vec![2], vec![0u8; 8]),
    ];
    match load_err(&file(&tensors, Dtype::F32, None)) {
        Error::Safetensors(msg) => {
            assert!(msg.contains("unknown architecture"), "{msg}");
            assert!(
                msg.contains("encoder.weight") && msg.contains("encoder.bias"),
                "{msg}"
            );
        }
        e => panic!("expected Error::Safetensors, got {e:?}"),
    }
    // An empty file (valid header, no tensors) too.
    match load_err(&file(&[], Dtype::F32, None)) {
        Error::Safetensors(msg) => assert!(msg.contains("unknown architecture"), "{msg}"),
        e => panic!("expected Error::Safetensors, got {e:?}"),
    }
}

#[test]
fn missing_and_extra_tensors_with_metadata_are_weight_errors() {
    let m = mini(8);
    let mut tensors = encode(&m, 4, |v| v.to_le_bytes().to_vec());
    let extra = tensors.clone();
    tensors.retain(|(k, _, _)| k != "fc8.bias");
    match load_err(&file(&tensors, Dtype::F32, arch_meta(&m.arch))) {
        Error::Weights(msg) => assert!(msg.contains("fc8.bias"), "{msg}"),
        e => panic!("expected Error::Weights, got {e:?}"),
    }
    let mut extra = extra;
    extra.push(("norm1.weight".to_string(), vec![1], vec![0u8; 4]));
    match load_err(&file(&extra, Dtype::F32, arch_meta(&m.arch))) {
        Error::Weights(msg) => assert!(msg.contains("norm1.weight"), "{msg}"),
        e => panic!("expected Error::Weights, got {e:?}"),
    }
    // Without metadata, a mini file missing one tensor matches no builtin.
    assert!(matches!(
        load_err(&file(&tensors, Dtype::F32, None)),
        Error::Safetensors(_)
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let good = st::save(&mini(9)).unwrap();
    let mut rng = Rng::new(99);
    for _ in 0..200 {
        let mut b = good.clone();
        // Flip a few bytes in the header region, where damage changes the parse.
        let header = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        for _ in 0..3 {
            let i = (rng.next_u64() as usize) % header;
            b[i] = rng.next_u64() as u8;
        }
        let _ = st::load(&b);
    }
}
