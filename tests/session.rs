//! The page's logic, natively (what `src/wasm/` only converts): the inference session
//! (classify on the CPU and on a GPU, a bad image beside good ones, a layer drawn from the
//! last run, the network replaced, a lost GPU device re-created, a failing GPU falling back
//! to the CPU), the training demo's requests and the fine-tuning session.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::block_on;

use alexnet::error::Error;
use alexnet::finetune::{self, Depth};
use alexnet::session::Session;
use alexnet::train::session::{demo, DemoOptions};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn embedded() -> alexnet::Model {
    alexnet::io::load_path(&root().join("www/models/mini-fashion.safetensors")).unwrap()
}

fn photo(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/photos").join(name)).unwrap()
}

#[test]
fn the_cpu_session_classifies_draws_and_keeps_going_after_a_bad_image() {
    let mut s = Session::new(embedded());
    let a = block_on(s.analyze(&photo("coffee.png"), 5, false, true)).unwrap();
    assert_eq!(a.backend, "cpu", "no GPU enabled: the CPU runs it");
    assert_eq!(a.preds.len(), 5);
    assert_eq!((a.crops, a.shown_crop), (1, 0));
    assert_eq!(a.feature.len(), 1024);
    let pics = block_on(s.layer_pictures(0)).unwrap();
    assert!(!pics.is_empty() && pics[0].width > 0);

    let bad = block_on(s.analyze(b"not an image", 5, false, false)).unwrap_err();
    assert!(matches!(bad, Error::Image(_)), "{bad:?}");
    // the last good image's layers are still there to draw, and the next image works
    assert!(block_on(s.layer_pictures(0)).is_ok());
    let ten = block_on(s.analyze(&photo("chelsea.png"), 3, true, false)).unwrap();
    assert_eq!((ten.crops, ten.shown_crop), (10, 4));

    assert_eq!(
        s.filters().unwrap().len(),
        2,
        "the mini net has the paper's two towers"
    );
    assert_eq!(s.crops(&photo("rocket.jpg"), true).unwrap().len(), 10);
    let other = alexnet::Model::random(alexnet::model::mini(), 3).unwrap();
    s.replace(other);
    assert!(matches!(block_on(s.layer_pictures(0)), Err(Error::Draw(_))));
    assert!(matches!(s.lose_gpu_device(), Err(Error::Gpu(_))));
}

#[test]
fn the_gpu_session_matches_the_cpu_and_survives_a_lost_device() {
    let Some(_) = common::gpu() else { return };
    let mut s = Session::new(embedded());
    block_on(s.enable_gpu()).unwrap();
    let img = photo("coffee.png");
    let cpu = block_on(s.analyze(&img, 3, false, false)).unwrap();
    let gpu = block_on(s.analyze(&img, 3, false, true)).unwrap();
    assert_eq!(gpu.backend, "gpu");
    assert_eq!(
        gpu.preds.iter().map(|p| p.index).collect::<Vec<_>>(),
        cpu.preds.iter().map(|p| p.index).collect::<Vec<_>>()
    );
    let pics = block_on(s.layer_pictures(0)).unwrap();
    assert!(!pics.is_empty());
    s.lose_gpu_device().unwrap();
    let again = block_on(s.analyze(&img, 3, false, true)).unwrap();
    assert_eq!(again.backend, "gpu");
    assert!(again.recovered.is_some(), "the device was re-created");
    assert!(s.gpu_in_use());
}

#[test]
fn the_training_demo_takes_steps_and_finishes_epochs() {
    let dir = root().join("www/data/fashion-mnist");
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let o = DemoOptions {
        batch: 250,
        ..DemoOptions::default()
    };
    let mut run = demo(
        &read("train-images-idx3-ubyte.gz"),
        &read("train-labels-idx1-ubyte.gz"),
        &read("t10k-images-idx3-ubyte.gz"),
        &read("t10k-labels-idx1-ubyte.gz"),
        &o,
    )
    .unwrap();
    let batches = run.data.train.len() / 250;
    let r = block_on(run.steps(batches + 1)).unwrap();
    assert_eq!(
        (r.step, r.taken, r.backend),
        ((batches + 1) as u64, batches + 1, "cpu")
    );
    assert_eq!(r.finished.len(), 1, "one epoch ended among the steps");
    assert_eq!((r.epoch, r.batch_in_epoch), (1, 1));
    assert!(r.loss.is_finite() && !r.done);
    let (examples, pics) = block_on(run.examples(4)).unwrap();
    assert_eq!((examples.len(), pics.len()), (4, 4));
    assert_eq!(run.samples(3).unwrap().len(), 3);
    assert!(matches!(
        run.set_sgd(0.01, 1.5, 0.0),
        Err(Error::Training(_))
    ));
    let m = alexnet::io::load_bytes(&block_on(run.snapshot()).unwrap()).unwrap();
    assert_eq!(m.arch.family, alexnet::model::Family::Mini);
    let bad = DemoOptions {
        batch: 0,
        ..DemoOptions::default()
    };
    let e = demo(b"", b"", b"", b"", &bad).err().unwrap();
    assert!(matches!(e, Error::Training(_)), "{e:?}");
}

#[test]
fn the_finetuning_session_runs_its_epochs_and_freezes_the_body() {
    let base = embedded();
    let img = |rgb: [u8; 3]| {
        image::RgbImage::from_fn(36, 36, |x, _| image::Rgb(rgb.map(|c| c ^ (x as u8 & 7))))
    };
    let mut photos = Vec::new();
    for _ in 0..4 {
        photos.push((img([220, 30, 30]), 0));
        photos.push((img([30, 30, 220]), 1));
    }
    let classes = vec!["red".to_string(), "blue".to_string()];
    let o = finetune::Options {
        epochs: 2,
        batch: 3,
        ..finetune::Options::default()
    };
    let (mut run, plan) =
        finetune::session(&base, &classes, photos.clone(), Depth::Head, &o).unwrap();
    assert_eq!((plan.train_images, plan.held_out, plan.batch), (6, 2, 3));
    let mut reports = Vec::new();
    loop {
        let r = block_on(run.steps(1)).unwrap();
        let done = r.done;
        reports.push(r);
        if done {
            break;
        }
    }
    assert_eq!(reports.len(), 4, "2 epochs of 6 photos in batches of 3");
    let finished: usize = reports.iter().map(|r| r.finished.len()).sum();
    assert_eq!(finished, 2);
    let tuned = alexnet::io::load_bytes(&block_on(run.snapshot()).unwrap()).unwrap();
    assert_eq!(
        tuned.params["conv1.weight"], base.params["conv1.weight"],
        "frozen"
    );
    assert_ne!(
        tuned.params["fc8.bias"].data,
        vec![0.0; 2],
        "the head learned"
    );

    let lone = finetune::session(&base, &classes[..1], photos[..1].to_vec(), Depth::Head, &o);
    assert!(matches!(lone.err(), Some(Error::Training(_))));
}
