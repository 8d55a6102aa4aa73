//! ONNX import/export: layers, shapes and family of the committed fixtures
//! (fixtures/onnx/, made by tools/gen_fixtures.py), named errors for bad files, export ->
//! import round trips, and garbage input that must give an error, never a panic.
//! Numerics against onnxruntime are in tests/reference.rs.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::pads;

use alexnet::io::onnx::{self, proto, ARCH_KEY};
use alexnet::model::{self, Arch, Family, Labels, Layer, LrnAlpha, Pads};
use alexnet::shape::Rounding;
use alexnet::tensor::Rng;
use alexnet::{Error, Model};
use npyz::WriterBuilder;
use prost::Message;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/onnx")
}

fn load(name: &str) -> Model {
    let p = fixtures().join(name);
    alexnet::io::load_path(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn names(arch: &Arch) -> Vec<&str> {
    arch.layers.iter().map(|l| l.name()).collect()
}

/// mini-bvlc.onnx's layers: Caffe's names, two LRNs, dropout and a softmax.
const MINI_BVLC_LAYERS: [&str; 24] = [
    "conv1", "relu1", "norm1", "pool1", "conv2", "relu2", "norm2", "pool2", "conv3", "relu3",
    "conv4", "relu4", "conv5", "relu5", "pool5", "flatten", "fc6", "relu6", "drop6", "fc7",
    "relu7", "drop7", "fc8", "prob",
];

/// mini-tv.onnx's layers: torchvision's, no LRN, an adaptive average pool.
const MINI_TV_LAYERS: [&str; 20] = [
    "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3", "conv4", "relu4",
    "conv5", "relu5", "pool5", "avgpool", "flatten", "fc6", "relu6", "fc7", "relu7", "fc8",
];

/// The fixture `file` imported as a custom-family model with these layer names and input.
fn load_custom(file: &str, layer_names: &[&str], input: [usize; 3]) -> Model {
    let m = load(file);
    assert_eq!(names(&m.arch), layer_names, "{file}: layers");
    assert_eq!(m.arch.input, input, "{file}: input");
    assert_eq!(m.arch.family, Family::Custom, "{file}: family");
    m
}

fn shape_of(arch: &Arch, layer: &str) -> Vec<usize> {
    let i = arch.layer_index(layer).unwrap();
    arch.shapes().unwrap()[i].clone()
}

#[test]
fn mini_bvlc_fixture_imports_with_caffe_layers() {
    let m = load_custom("mini-bvlc.onnx", &MINI_BVLC_LAYERS, [3, 36, 36]);
    let a = &m.arch;
    assert_eq!(
        a.labels,
        Labels::Custom((0..10).map(|i| format!("class {i}")).collect())
    );
    assert_eq!(shape_of(a, "conv1"), [8, 16, 16]);
    assert_eq!(shape_of(a, "pool1"), [8, 8, 8], "ceil_mode=1: 16 -> 8");
    assert_eq!(shape_of(a, "pool2"), [16, 4, 4]);
    assert_eq!(shape_of(a, "pool5"), [16, 2, 2], "pads [0,0,1,1]: 4 -> 2");
    match &a.layers[2] {
        Layer::Lrn(l) => {
            assert_eq!((l.size, l.alpha, l.beta, l.k), (5, 0.5, 0.75, 2.0));
            assert_eq!(l.alpha_mode, LrnAlpha::OverN, "ONNX divides alpha by n");
        }
        other => panic!("norm1 is {other:?}"),
    }
    match &a.layers[3] {
        Layer::MaxPool(p) => assert_eq!((p.rounding, p.pads), (Rounding::Ceil, Pads::default())),
        other => panic!("pool1 is {other:?}"),
    }
    match &a.layers[14] {
        Layer::MaxPool(p) => {
            assert_eq!(p.rounding, Rounding::Floor);
            assert_eq!(p.pads, pads(0, 0, 1, 1));
        }
        other => panic!("pool5 is {other:?}"),
    }
    match &a.layers[4] {
        Layer::Conv(c) => assert_eq!(
            (c.groups, c.in_channels, c.out_channels, c.kernel),
            (2, 8, 16, [5, 5])
        ),
        other => panic!("conv2 is {other:?}"),
    }
    match &a.layers[18] {
        Layer::Dropout(d) => assert_eq!(d.p, 0.5),
        other => panic!("drop6 is {other:?}"),
    }
    // fc7 was stored transposed (transB = 0): we keep (out, in).
    assert_eq!(m.weight("fc7").unwrap().shape, [32, 32]);
    assert_eq!(m.weight("fc8").unwrap().shape, [10, 32]);
    assert_eq!(m.bias("fc8").unwrap().shape, [10]);
}

#[test]
fn mini_torchvision_fixture_imports_with_torch_layers() {
    let m = load_custom("mini-tv.onnx", &MINI_TV_LAYERS, [3, 48, 48]);
    let a = &m.arch;
    assert_eq!(a.preprocess.channel_order, model::ChannelOrder::Rgb);
    assert_eq!(a.preprocess.crop, 48);
    assert_eq!(shape_of(a, "pool5"), [16, 2, 2]);
    assert_eq!(shape_of(a, "avgpool"), [16, 1, 1]);
    match &a.layers[13] {
        Layer::AdaptiveAvgPool(p) => assert_eq!(p.out, [1, 1]),
        other => panic!("avgpool is {other:?}"),
    }
    assert_eq!(a.num_classes().unwrap(), 10);
}

#[test]
fn mini_misc_fixture_covers_the_other_ops() {
    let m = load("mini-misc.onnx");
    let a = &m.arch;
    assert_eq!(
        names(a),
        ["conv1", "relu1", "pool1", "avgpool", "flatten", "fc2", "relu2", "drop2", "fc3", "prob"]
    );
    // Conv without bias -> zero bias; MatMul + Add -> fc2 with that bias; MatMul alone -> 0.
    assert!(m.bias("conv1").unwrap().data.iter().all(|v| *v == 0.0));
    assert!(m.bias("fc2").unwrap().data.iter().any(|v| *v != 0.0));
    assert!(m.bias("fc3").unwrap().data.iter().all(|v| *v == 0.0));
    assert_eq!(m.weight("fc2").unwrap().shape, [8, 6]);
    match &a.layers[7] {
        Layer::Dropout(d) => assert_eq!(d.p, 0.3, "ratio given as an input"),
        other => panic!("drop2 is {other:?}"),
    }
    assert_eq!(shape_of(a, "avgpool"), [6, 1, 1]);
}

#[test]
fn float16_weights_are_widened() {
    let f32m = load("mini-tv.onnx");
    let f16m = load("mini-fp16.onnx");
    assert_eq!(f16m.arch.layers, f32m.arch.layers);
    let mut n = 0;
    for (k, t32) in &f32m.params {
        let t16 = &f16m.params[k];
        assert_eq!(t16.shape, t32.shape);
        for (i, (a, b)) in t16.data.iter().zip(&t32.data).enumerate() {
            let want = half::f16::from_f32(*b).to_f32();
            assert_eq!(
                *a, want,
                "{k}[{i}]: f16 value {a} != round_to_f16({b}) = {want}"
            );
            n += 1;
        }
    }
    assert!(n > 5000);
}

/// The ONNX model zoo's bvlcalexnet graph (the onnx wheel's light_bvlc_alexnet.onnx: IR 3,
/// opset 9, initializers listed as inputs, weights made by ConstantOfShape = 0.02).
#[test]
fn zoo_bvlcalexnet_is_recognised_as_bvlc() {
    let m = load("light_bvlc_alexnet.onnx");
    let a = &m.arch;
    let b = model::bvlc();
    assert_eq!(a.family, Family::Bvlc);
    assert_eq!(a.preprocess, b.preprocess);
    assert_eq!(a.labels, Labels::Imagenet);
    assert_eq!(a.input, [3, 224, 224]);
    assert_eq!(names(a), names(&b), "same layer names as model::bvlc()");
    assert_eq!(a.param_count(), 60_965_224);
    // Same convs, LRNs and FCs as bvlc(); only the pools differ: the zoo file floors
    // pool1/pool2 (opset 9 has no ceil_mode) and pads pool5 [0,0,1,1].
    for (x, y) in a.layers.iter().zip(&b.layers) {
        match (x, y) {
            (Layer::MaxPool(p), Layer::MaxPool(q)) => {
                assert_eq!((p.kernel, p.stride), (q.kernel, q.stride))
            }
            _ => assert_eq!(x, y),
        }
    }
    assert_eq!(shape_of(a, "conv1"), [96, 54, 54]);
    assert_eq!(shape_of(a, "pool1"), [96, 26, 26]);
    assert_eq!(shape_of(a, "pool2"), [256, 12, 12]);
    assert_eq!(shape_of(a, "pool5"), [256, 6, 6]);
    assert!(m.weight("fc6").unwrap().data.iter().all(|v| *v == 0.02));
}

#[test]
fn bad_files_give_named_errors() {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).unwrap()).unwrap();
    let bad = manifest["bad"].as_object().unwrap();
    assert!(bad.len() >= 6);
    for (file, want) in bad {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let err = match onnx::import(&bytes) {
            Ok(_) => panic!("{file}: imported, expected an error"),
            Err(e) => e,
        };
        let msg = err.to_string();
        let contains = want["contains"].as_str().unwrap();
        assert!(
            msg.contains(contains),
            "{file}: error {msg:?} should mention {contains:?}"
        );
        match (want["error"].as_str().unwrap(), &err) {
            ("OnnxNode", Error::OnnxNode { node, op, .. }) => {
                assert_eq!(node, want["node"].as_str().unwrap(), "{file}: {msg}");
                assert_eq!(op, want["op"].as_str().unwrap(), "{file}: {msg}");
            }
            ("Onnx", Error::Onnx(_)) => {}
            (kind, _) => panic!("{file}: expected Error::{kind}, got {err:?}"),
        }
        println!("{file}: {msg}");
    }
}

#[test]
fn garbage_and_truncations_are_errors_not_panics() {
    let good = std::fs::read(fixtures().join("mini-misc.onnx")).unwrap();
    onnx::import(&good).unwrap();
    // Every strict prefix of a valid file.
    for len in 0..good.len() {
        let r = onnx::import(&good[..len]);
        assert!(
            matches!(&r, Err(e) if !matches!(e, alexnet::Error::Internal(_))),
            "prefix of {len} bytes: {:?}",
            r.map(|_| ())
        );
    }
    // Random bytes, and random bytes after a plausible ModelProto key.
    let mut rng = Rng::new(7);
    for i in 0..2000 {
        let n = (rng.next_u64() % 512) as usize;
        let mut b: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        if i % 2 == 0 && !b.is_empty() {
            b[0] = 0x3a; // field 7 (graph), length-delimited
        }
        let r = onnx::import(&b);
        assert!(
            matches!(&r, Err(e) if !matches!(e, alexnet::Error::Internal(_))),
            "{:?}",
            r.map(|_| ())
        );
        let _ = alexnet::io::load_bytes(&b);
    }
    // Flipped bytes in a valid file: may import or not, must not panic.
    for _ in 0..2000 {
        let mut b = good.clone();
        for _ in 0..3 {
            let i = (rng.next_u64() % b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        let _ = onnx::import(&b);
    }
}

/// With `ALEXNET_EXPORT_DIR` set, exported models are also written there with an input and
/// our forward output (`{name}.onnx`, `{name}-input.npy`, `{name}-output.npy`), so that
/// `tools/check_export.py DIR` can run them through onnxruntime.
fn dump_export(name: &str, m: &Model, bytes: &[u8]) {
    let Some(dir) = std::env::var_os("ALEXNET_EXPORT_DIR").map(PathBuf::from) else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.onnx")), bytes).unwrap();
    let [c, h, w] = m.arch.input;
    let mut x = alexnet::Tensor::zeros(&[2, c, h, w]);
    Rng::new(99).fill_normal(&mut x.data, 1.0);
    let y = m.forward(&x).unwrap();
    let npy = |t: &alexnet::Tensor| {
        let mut out = Vec::new();
        let shape: Vec<u64> = t.shape.iter().map(|d| *d as u64).collect();
        let mut wr = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        wr.extend(t.data.iter().copied()).unwrap();
        wr.finish().unwrap();
        out
    };
    std::fs::write(dir.join(format!("{name}-input.npy")), npy(&x)).unwrap();
    std::fs::write(dir.join(format!("{name}-output.npy")), npy(&y)).unwrap();
}

fn round_trip(m: &Model) -> Model {
    let bytes = onnx::export(m).unwrap();
    let name = format!("{}-{}", m.arch.family.as_str(), m.arch.param_count());
    dump_export(&name, m, &bytes);
    let back = onnx::import(&bytes).unwrap_or_else(|e| panic!("{:?}: {e}", m.arch.family));
    assert_eq!(back.arch, m.arch, "architecture changed in the round trip");
    assert_eq!(back.params.len(), m.params.len());
    for (k, t) in &m.params {
        assert!(back.params[k] == *t, "{k} changed in the round trip");
    }
    back
}

/// Export without the `alexnet.arch` metadata, as another tool would write the graph.
fn strip_metadata(bytes: &[u8]) -> Vec<u8> {
    let mut p = proto::ModelProto::decode(bytes).unwrap();
    p.metadata_props.clear();
    p.encode_to_vec()
}

#[test]
fn round_trip_mini_and_small_paper_and_bvlc_shapes() {
    round_trip(&Model::random(model::mini(), 1).unwrap());
    // A small paper-style net: LRN alpha NOT divided by n (exported as alpha * n), asymmetric
    // conv1 pads, ceil pooling, softmax.
    let mut a = model::mini();
    a.family = Family::Custom;
    for l in a.layers.iter_mut() {
        match l {
            Layer::Lrn(s) => s.alpha_mode = LrnAlpha::Raw,
            Layer::MaxPool(p) => p.rounding = Rounding::Ceil,
            Layer::Conv(c) if c.name == "conv1" => c.pads = pads(1, 1, 2, 3),
            _ => {}
        }
    }
    a.layers.push(Layer::Softmax {
        name: "prob".into(),
    });
    let flat = a.shapes().map(|_| ()).err().map(|_| {
        let i = a.layer_index("flatten").unwrap();
        let prefix = Arch {
            layers: a.layers[..=i].to_vec(),
            ..a.clone()
        };
        prefix.shapes().unwrap()[i][0]
    });
    if let (Some(f), Ok(i)) = (flat, a.layer_index("fc6")) {
        if let Layer::Linear(l) = &mut a.layers[i] {
            l.in_features = f;
        }
    }
    round_trip(&Model::random(a, 2).unwrap());
    // The bvlc-shaped fixture (grouped conv, LRN, ceil + padded pools) through our exporter.
    let mb = load("mini-bvlc.onnx");
    round_trip(&mb);
    // Without metadata the graph is recognised as the mini builtin (Dropout restored).
    let m = Model::random(model::mini(), 3).unwrap();
    let back = onnx::import(&strip_metadata(&onnx::export(&m).unwrap())).unwrap();
    assert_eq!(
        back.arch,
        model::mini(),
        "recognised as the mini builtin, dropouts restored"
    );
    assert!(back.params == m.params);
}

#[test]
fn round_trip_full_torchvision_and_bvlc_recognised_without_metadata() {
    for arch in [model::torchvision(), model::bvlc()] {
        let family = arch.family;
        let m = Model::random(arch.clone(), 11).unwrap();
        round_trip(&m);
        let bytes = strip_metadata(&onnx::export(&m).unwrap());
        let back = onnx::import(&bytes).unwrap();
        assert_eq!(
            back.arch, arch,
            "{family:?} graph without metadata (and without Dropout nodes)"
        );
        assert!(back.params == m.params);
    }
}

#[test]
fn edited_metadata_is_rejected() {
    let m = Model::random(model::mini(), 4).unwrap();
    let mut p = proto::ModelProto::decode(onnx::export(&m).unwrap().as_slice()).unwrap();
    let mut a = m.arch.clone();
    if let Layer::Conv(c) = &mut a.layers[0] {
        c.stride = [2, 2];
    }
    p.metadata_props
        .iter_mut()
        .find(|e| e.key == ARCH_KEY)
        .unwrap()
        .value = serde_json::to_string(&a).unwrap();
    match onnx::import(&p.encode_to_vec()) {
        Err(Error::Onnx(msg)) => assert!(msg.contains(ARCH_KEY), "{msg}"),
        other => panic!("expected an Onnx error, got {other:?}"),
    }
    p.metadata_props[0].value = "{not json".into();
    assert!(matches!(
        onnx::import(&p.encode_to_vec()),
        Err(Error::Onnx(_))
    ));
}

#[test]
fn uneven_adaptive_pool_cannot_be_exported() {
    let mut a = model::mini();
    // pool5 gives 3x3; adaptive pooling to 2x2 has overlapping windows.
    let i = a.layer_index("flatten").unwrap();
    let channels = a.shapes().unwrap()[i - 1][0];
    a.layers.insert(
        i,
        Layer::AdaptiveAvgPool(model::AvgPoolSpec {
            name: "avgpool".into(),
            out: [2, 2],
        }),
    );
    if let Layer::Linear(l) = &mut a.layers[i + 2] {
        l.in_features = channels * 4;
    }
    let m = Model::random(a, 5).unwrap();
    match onnx::export(&m) {
        Err(Error::Onnx(msg)) => assert!(msg.contains("avgpool"), "{msg}"),
        other => panic!("expected an error, got {:?}", other.map(|b| b.len())),
    }
}

/// Hostile attribute and shape values (huge, negative, zero) give errors, not panics or
/// overflows, whichever attribute of whichever node they are put in.
#[test]
fn hostile_attributes_are_errors_not_panics() {
    let good = std::fs::read(fixtures().join("mini-bvlc.onnx")).unwrap();
    let base = proto::ModelProto::decode(good.as_slice()).unwrap();
    let values = [i64::MAX, i64::MIN, -1, 0, 1 << 40, 1 << 20];
    let nodes = base.graph.as_ref().unwrap().node.len();
    let mut tried = 0;
    for n in 0..nodes {
        let attrs = base.graph.as_ref().unwrap().node[n].attribute.len();
        for a in 0..attrs {
            for v in values {
                let mut p = base.clone();
                let at = &mut p.graph.as_mut().unwrap().node[n].attribute[a];
                at.i = v;
                at.f = v as f32;
                for x in at.ints.iter_mut() {
                    *x = v;
                }
                let _ = onnx::import(&p.encode_to_vec());
                tried += 1;
            }
        }
    }
    // The input shape and a weight's dims.
    for v in values {
        let mut p = base.clone();
        let g = p.graph.as_mut().unwrap();
        for d in g.input[0]
            .r#type
            .as_mut()
            .unwrap()
            .tensor_type
            .as_mut()
            .unwrap()
            .shape
            .as_mut()
            .unwrap()
            .dim
            .iter_mut()
            .skip(1)
        {
            d.dim_value = Some(v);
        }
        assert!(onnx::import(&p.encode_to_vec()).is_err());
        let mut p = base.clone();
        let g = p.graph.as_mut().unwrap();
        for d in g.initializer[0].dims.iter_mut() {
            *d = v;
        }
        let _ = onnx::import(&p.encode_to_vec());
        tried += 2;
    }
    assert!(tried > 100);
}
