//! `alexnet eval`: top-1 and top-5 error on a dataset's test images (`train::evaluate_views`,
//! the evaluation the trainer runs after every epoch), optionally with the paper's ten views,
//! optionally added to a JSON record.

use super::{default_data_dir, load, write_atomic, Dataset, NetArg};
use crate::data::Images;
use crate::error::{Error, Result};
use pollster::block_on;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    net: NetArg,
    /// The dataset whose test images to score (fashion-mnist: 10,000)
    #[arg(long, value_enum)]
    dataset: Dataset,
    /// Where the dataset's IDX files are
    #[arg(long, default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Also the paper's test-time error: softmax averaged over ten views of each image
    /// (the four corners and the centre of the canvas, and their mirrors)
    #[arg(long)]
    ten_crop: bool,
    /// Also add the results to this JSON file (e.g. the training record OUT.json)
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(super) fn run(a: Args) -> Result<()> {
    let model = load(&a.net.model)?;
    let dataset = a.dataset.name();
    let test = Images::fashion_mnist(&a.data_dir, false)?;
    let t = Instant::now();
    let mut runner = a.net.backend.runner(&model)?;
    let s = block_on(crate::train::evaluate_views(
        &mut runner,
        &model.arch,
        &test,
        a.batch,
        a.ten_crop,
    ))?;
    let line = |what: &str, correct: (usize, usize)| {
        let ((top1_err, top5_err), (top1, _)) = (s.errors(correct), s.accuracies(correct));
        println!(
            "{dataset} test set, {} images on {}, {what}: top-1 error {:.2}% (accuracy {:.2}%), \
             top-5 error {:.2}%",
            s.images,
            runner.describe(),
            top1_err * 100.0,
            top1 * 100.0,
            top5_err * 100.0,
        )
    };
    line("centred", s.centre);
    if let Some(ten) = s.ten_views {
        line("ten views averaged", ten);
    }
    println!("({:.1} s)", t.elapsed().as_secs_f64());
    super::note_fallback(&runner);
    if let Some(path) = &a.json {
        record(path, dataset, &s, &runner.describe())?;
    }
    Ok(())
}

/// Adds the scores to the JSON object in `path` (a training record from `alexnet train`),
/// creating it if needed.
fn record(path: &Path, dataset: &str, s: &crate::train::Scores, backend: &str) -> Result<()> {
    let json_err = |msg: String| Error::Json {
        path: path.display().to_string(),
        msg,
    };
    let mut record: serde_json::Value = match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| json_err(format!("not JSON: {e}")))?,
        Err(_) => serde_json::json!({}),
    };
    let obj = record
        .as_object_mut()
        .ok_or_else(|| json_err("not a JSON object".into()))?;
    obj.insert("test_dataset".into(), dataset.into());
    obj.insert("test_images".into(), s.images.into());
    let (top1, top5) = s.accuracies(s.centre);
    obj.insert("test_top1_accuracy".into(), top1.into());
    obj.insert("test_top5_accuracy".into(), top5.into());
    match s.ten_views {
        Some(ten) => {
            let (top1, top5) = s.accuracies(ten);
            obj.insert("test_top1_accuracy_10view".into(), top1.into());
            obj.insert("test_top5_accuracy_10view".into(), top5.into());
        }
        None => {
            // a centred-only eval must not leave an older model's ten-view numbers behind
            obj.remove("test_top1_accuracy_10view");
            obj.remove("test_top5_accuracy_10view");
        }
    }
    obj.insert("test_backend".into(), backend.into());
    write_atomic(path, record.to_string().as_bytes())
}
