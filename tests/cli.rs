//! The `alexnet` binary end to end: every subcommand, on the fixture photos, with
//! torchvision-shaped and bvlc-shaped weight files, and its error behaviour (one line,
//! non-zero exit, no panic).
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PHOTOS: [&str; 6] = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "grace_hopper.jpg",
    "motorcycle_left.png",
    "rocket.jpg",
];

fn alexnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alexnet"))
        .args(args)
        .output()
        .expect("the alexnet binary runs")
}

/// `alexnet <command> --model mini --seed <seed> <rest...>`: on a random `mini`.
fn alexnet_mini(command: &str, seed: &str, rest: &[&str]) -> Output {
    alexnet(&[&[command, "--model", "mini", "--seed", seed][..], rest].concat())
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alexnet-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn photo(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/photos")
        .join(name)
        .display()
        .to_string()
}

/// A user error: exit status 1, exactly one line on stderr starting with the program name,
/// and never a panic.
fn assert_one_line_error(o: &Output, pattern: &str) {
    assert_one_line_error_with(o, pattern, 1);
}

/// An argument clap refuses (a value not among an option's values): exit status 2, one
/// line on stderr that names the values it takes.
fn assert_one_line_usage_error(o: &Output, pattern: &str) {
    assert_one_line_error_with(o, pattern, 2);
}

fn assert_one_line_error_with(o: &Output, pattern: &str, code: i32) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic reached the user: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("alexnet: error: "), "stderr: {err}");
    assert!(err.contains(pattern), "expected {pattern:?} in {err}");
}

#[test]
fn info_prints_the_known_numbers() {
    let o = alexnet(&["info", "--model", "bvlc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("parameters: 60,965,224"), "{out}");
    assert!(out.contains("conv1      conv     96x54x54"), "{out}");
    assert!(out.contains("(0.721 G)"), "{out}");
    assert!(out.contains("Bgr order"), "{out}");
    let o = alexnet(&["info", "--model", "torchvision"]);
    assert!(
        stdout(&o).contains("parameters: 61,100,840"),
        "{}",
        stdout(&o)
    );
    let o = alexnet(&["info", "--model", "paper"]);
    assert!(
        stdout(&o).contains("conv1      conv     96x55x55"),
        "{}",
        stdout(&o)
    );
    let o = alexnet(&["info", "--model", "mini"]);
    assert!(
        stdout(&o).contains("parameters: 3,446,698"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn classify_photos_with_bvlc_and_torchvision_shaped_files() {
    let dir = scratch("classify");
    for (config, extra) in [("bvlc", None), ("torchvision", Some("--torchvision-keys"))] {
        let file = dir.join(format!("{config}.safetensors"));
        let file_s = file.display().to_string();
        let mut args = vec![
            "export", "--model", config, "--seed", "11", "--out", &file_s,
        ];
        args.extend(extra);
        let o = alexnet(&args);
        assert!(o.status.success(), "{}", stderr(&o));

        // The file says what it is.
        let o = alexnet(&["info", "--model", &file_s]);
        assert!(
            stdout(&o).contains(&format!("family: {config}")),
            "{}",
            stdout(&o)
        );

        let mut args = vec!["classify".to_string(), "--model".into(), file_s.clone()];
        args.extend(PHOTOS.iter().map(|p| photo(p)));
        let o = alexnet(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        // Six images, five ranked lines each, probabilities that parse and descend.
        let ranked: Vec<f32> = out
            .lines()
            .filter(|l| l.starts_with("  "))
            .map(|l| l.trim().split('%').next().unwrap().trim().parse().unwrap())
            .collect();
        assert_eq!(ranked.len(), 30, "{out}");
        for five in ranked.chunks(5) {
            assert!(five.windows(2).all(|w| w[0] >= w[1]), "{out}");
            assert!(five.iter().all(|p| (0.0..=100.0).contains(p)), "{out}");
        }
    }
    // The paper's 10-crop averaging on one photo and --top.
    let file = dir.join("bvlc.safetensors").display().to_string();
    let o = alexnet(&[
        "classify",
        "--model",
        &file,
        "--tta",
        "--top",
        "3",
        &photo("chelsea.png"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("  ")).count(),
        3
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn export_f16_halves_the_file_and_loads_back() {
    let dir = scratch("f16");
    let full = dir.join("mini.safetensors").display().to_string();
    let half = dir.join("mini-f16.safetensors").display().to_string();
    let o = alexnet(&["export", "--model", "mini", "--seed", "2", "--out", &full]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = alexnet(&["export", "--model", &full, "--f16", "--out", &half]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (
        std::fs::metadata(&full).unwrap().len(),
        std::fs::metadata(&half).unwrap().len(),
    );
    // 3.45 M values: 4 bytes each, then 2; the header is a few kB either way.
    assert!(b < a / 2 + 8192 && b > a / 2 - 8192, "{a} -> {b} bytes");
    let o = alexnet(&["info", "--model", &half]);
    assert!(stdout(&o).contains("family: mini"), "{}", stdout(&o));
    let onnx = dir.join("mini.onnx").display().to_string();
    assert_one_line_error(
        &alexnet(&["export", "--model", &full, "--f16", "--out", &onnx]),
        "--f16 only with .safetensors",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_writes_any_layer_as_npy() {
    let dir = scratch("run");
    let x = alexnet::tensor::Tensor::zeros(&[2, 3, 32, 32]);
    let input = dir.join("x.npy");
    std::fs::write(&input, alexnet::npy::write(&x).unwrap()).unwrap();
    let output = dir.join("y.npy");
    let (i, o) = (input.display().to_string(), output.display().to_string());
    let r = alexnet(&[
        "run", "--model", "mini", "--seed", "3", "--input", &i, "--output", &o, "--layer", "fc7",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let y = alexnet::npy::read(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(y.shape, vec![2, 1024]);
    let r = alexnet(&[
        "run", "--model", "mini", "--seed", "3", "--input", &i, "--output", &o,
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let y = alexnet::npy::read(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(y.shape, vec![2, 10]);

    let r = alexnet(&[
        "run", "--model", "mini", "--seed", "3", "--input", &i, "--output", &o, "--layer", "fc9",
    ]);
    assert_one_line_error(&r, "no layer named \"fc9\"");
    // Input of the wrong size for the network.
    let bad = dir.join("bad.npy");
    std::fs::write(
        &bad,
        alexnet::npy::write(&alexnet::tensor::Tensor::zeros(&[1, 3, 31, 32])).unwrap(),
    )
    .unwrap();
    let r = alexnet_mini(
        "run",
        "3",
        &["--input", &bad.display().to_string(), "--output", &o],
    );
    assert_one_line_error(&r, "shape");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn errors_are_one_line() {
    let dir = scratch("errors");
    assert_one_line_error(&alexnet(&["info", "--model", "vgg16"]), "unknown model");
    assert_one_line_error(
        &alexnet(&["classify", "--model", "bvlc", &photo("coffee.png")]),
        "--seed",
    );
    let junk = dir.join("junk.onnx");
    std::fs::write(&junk, b"\x08\x07\xff\xff\xff\xff").unwrap();
    assert_one_line_error(
        &alexnet(&["info", "--model", &junk.display().to_string()]),
        "ONNX",
    );
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"\xff\xff\xff\xff\x00\x00\x00\x00{}").unwrap();
    assert_one_line_error(
        &alexnet(&["info", "--model", &junk.display().to_string()]),
        "safetensors",
    );

    // A truncated JPEG is not classified from the grey its decoder would fill in.
    let jpg = std::fs::read(photo("rocket.jpg")).unwrap();
    let cut = dir.join("cut.jpg");
    std::fs::write(&cut, &jpg[..jpg.len() * 4 / 5]).unwrap();
    let o = alexnet_mini("classify", "1", &[&cut.display().to_string()]);
    assert_one_line_error(&o, "cut.jpg: image: the JPEG data is truncated");
    assert!(!stdout(&o).contains("cut.jpg"), "{}", stdout(&o));

    // A bad image among good ones: the good ones are still classified, the status is 1.
    let not_image = dir.join("not-an-image.png");
    std::fs::write(&not_image, b"hello").unwrap();
    let o = alexnet_mini(
        "classify",
        "1",
        &[&not_image.display().to_string(), &photo("coffee.png")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("coffee.png"), "{}", stdout(&o));
    assert!(stderr(&o).contains("not-an-image.png"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
    std::fs::remove_dir_all(&dir).ok();
}

/// build.sh installs Mesa's Vulkan drivers, so CI must see at least the lavapipe adapter and
/// call it software; elsewhere the command must at least run and say what it found.
#[test]
fn adapters_are_reported_honestly() {
    let o = alexnet(&["adapters"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    println!("{out}");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        assert!(
            out.contains("Vulkan"),
            "CI=true but no Vulkan adapter was found: {out}"
        );
    }
    for line in out
        .lines()
        .filter(|l| l.to_lowercase().contains("llvmpipe"))
    {
        assert!(line.contains("[software"), "{line}");
    }
}

/// `alexnet bench` prints every layer and the total for each backend (numbers are not
/// asserted: the machines are shared and noisy).
#[test]
fn bench_prints_layers_and_total() {
    for backend in ["ref", "cpu", "gpu"] {
        if backend == "gpu" && alexnet::gpu::native_adapters().is_empty() {
            continue;
        }
        let bench = |extra: &[&str]| {
            let base = ["--backend", backend, "--runs", "1", "--batch", "2"];
            alexnet_mini("bench", "1", &[&base[..], extra].concat())
        };
        let o = bench(&[]);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let out = stdout(&o);
        for layer in ["conv1", "norm2", "pool5", "fc8"] {
            assert!(
                out.lines().any(|l| l.starts_with(layer)),
                "{backend}: {out}"
            );
        }
        assert!(out.contains("images/s"), "{out}");

        let o = bench(&["--train"]);
        assert!(o.status.success(), "{backend} --train: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("training step:"), "{backend} --train: {out}");
    }
    assert_one_line_usage_error(
        &alexnet_mini("bench", "1", &["--backend", "tpu"]),
        "invalid value 'tpu' for '--backend <BACKEND>'; [possible values: ref, cpu, gpu]",
    );
}

/// `alexnet train` on the Fashion-MNIST subset the page ships (www/data/fashion-mnist, the
/// same IDX format as Debian's files): a few steps, the model, its record and a checkpoint
/// written; `--resume` goes on from the checkpoint; `alexnet eval --json` adds the test
/// accuracy to the record; `--show-augmented` writes a PNG; bad arguments are one-line
/// errors.
#[test]
fn train_resume_eval_on_the_shipped_subset() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/data/fashion-mnist");
    let data = data.to_str().unwrap();
    let dir = scratch("train");
    let out = dir.join("m.safetensors");
    let out_s = out.to_str().unwrap();
    let common = [
        "train",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        data,
        "--val",
        "200",
        "--batch",
        "16",
        "--init",
        "he",
        "--threads",
        "1",
        "--out",
        out_s,
    ];
    let o = alexnet(&[&common[..], &["--max-steps", "3"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stopped after --max-steps"),
        "{}",
        stderr(&o)
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("m.json")).unwrap()).unwrap();
    assert_eq!(record["steps"], 3);
    assert_eq!(record["finished"], false);
    assert!(dir.join("m.ckpt.safetensors").exists());

    let o = alexnet(&[&common[..], &["--max-steps", "2", "--resume"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming"), "{}", stderr(&o));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("m.json")).unwrap()).unwrap();
    assert_eq!(record["steps"], 5);

    let json = dir.join("m.json");
    let eval = |data_dir| {
        let args = [
            "--model",
            out_s,
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            data_dir,
        ];
        [&["eval"][..], &args[..]].concat()
    };
    let more = [
        "--backend",
        "cpu",
        "--ten-crop",
        "--json",
        json.to_str().unwrap(),
    ];
    let o = alexnet(&[&eval(data)[..], &more[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("500 images"), "{}", stdout(&o));
    assert!(stdout(&o).contains("ten views averaged"), "{}", stdout(&o));
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in ["test_top1_accuracy", "test_top1_accuracy_10view"] {
        let acc = record[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{key}: {acc}");
    }
    assert_eq!(record["steps"], 5, "the training record is kept");

    let png = dir.join("aug.png");
    let o = alexnet(&[&common[..], &["--show-augmented", png.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(image::open(&png).unwrap().width() > 200);

    for bad in [
        vec!["train", "--dataset", "cifar", "--out", out_s],
        vec![
            "train",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            "/nonexistent",
            "--out",
            out_s,
        ],
        vec![
            "train",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            data,
            "--init",
            "xavier",
            "--out",
            out_s,
        ],
        eval("/nonexistent"),
    ] {
        let o = alexnet(&bad);
        assert!(!o.status.success(), "{bad:?} succeeded");
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{bad:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}

/// `alexnet finetune`: two classes of photos from folders (plain colours a net separates
/// at once), the embedded model's new head trained with the page's loop; the written model
/// loads with the new classes and tells the colours apart; a file that is not an image, a
/// lone class and a missing folder are one-line errors.
#[test]
fn finetune_teaches_new_classes_from_folders() {
    let dir = scratch("finetune");
    let make = |name: &str, rgb: [u8; 3]| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..6u8 {
            let img = image::RgbImage::from_fn(40, 36, |x, y| {
                let n = ((x as u8).wrapping_mul(7) ^ (y as u8).wrapping_mul(13) ^ i) % 24;
                image::Rgb(rgb.map(|c| c.saturating_sub(n)))
            });
            img.save(d.join(format!("{i}.png"))).unwrap();
        }
        d
    };
    let red = make("red", [230, 40, 40]);
    let blue = make("blue", [40, 40, 230]);
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("www/models/mini-fashion.safetensors");
    let out = dir.join("colours.safetensors");
    let class = |n: &str, d: &Path| format!("{n}={}", d.display());
    let args = |extra: &[String]| -> Vec<String> {
        let mut v: Vec<String> = [
            "finetune",
            "--model",
            model.to_str().unwrap(),
            "--depth",
            "head",
            "--epochs",
            "4",
            "--lr",
            "0.02",
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().cloned());
        v
    };
    let run = |extra: &[String]| {
        let a = args(extra);
        alexnet(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run(&[
        "--class".into(),
        class("red", &red),
        "--class".into(),
        class("blue", &blue),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("held-out accuracy"), "{}", stderr(&o));
    let m = alexnet::io::load_path(&out).unwrap();
    assert_eq!(
        m.arch.labels,
        alexnet::model::Labels::Custom(vec!["red".into(), "blue".into()])
    );
    let o = alexnet(&[
        "classify",
        "--model",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
        "--top",
        "1",
        red.join("0.png").to_str().unwrap(),
        blue.join("0.png").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = stdout(&o);
    let lines: Vec<&str> = printed.lines().collect();
    let top = |file: &str| {
        let i = lines.iter().position(|l| l.ends_with(file)).unwrap();
        lines[i + 1].trim().rsplit(' ').next().unwrap().to_string()
    };
    assert_eq!(top("red/0.png"), "red", "{lines:?}");
    assert_eq!(top("blue/0.png"), "blue", "{lines:?}");

    std::fs::write(blue.join("notes.jpg"), b"not a photo").unwrap();
    assert_one_line_error(
        &run(&[
            "--class".into(),
            class("red", &red),
            "--class".into(),
            class("blue", &blue),
        ]),
        "notes.jpg",
    );
    assert_one_line_error(
        &run(&["--class".into(), class("red", &red)]),
        "at least 2 classes",
    );
    assert_one_line_error(
        &run(&[
            "--class".into(),
            class("red", &red),
            "--class".into(),
            class("green", &dir.join("green")),
        ]),
        "green",
    );
}
