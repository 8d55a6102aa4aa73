//! Class names for a model's outputs. The lists live in `data/` (one name per line, index
//! order; sources and licences in `data/LABELS.md`) and are compiled in with `include_str!`,
//! so they work the same natively and in wasm.
//!
//! Nothing here panics: an index past the end of a list is named `"class {i}"`.

use crate::model::Labels;

/// The 1000 ILSVRC-2012 classes, one per line. Each line is a WordNet lemma list, most
/// common name first (`"tabby, tabby cat"`).
pub const IMAGENET: &str = include_str!("../data/imagenet_classes.txt");

/// The 10 Fashion-MNIST classes, one per line.
pub const FASHION_MNIST: &str = include_str!("../data/fashion_mnist_classes.txt");

/// Number of classes in the built-in ImageNet list.
pub const IMAGENET_LEN: usize = 1000;

/// The full lines of a label set, borrowed: for ImageNet the whole lemma list
/// (`"tabby, tabby cat"`), for the others the name itself.
pub fn full_names(labels: &Labels) -> Vec<&str> {
    match labels {
        Labels::Imagenet => IMAGENET.lines().collect(),
        Labels::FashionMnist => FASHION_MNIST.lines().collect(),
        Labels::Custom(v) => v.iter().map(String::as_str).collect(),
    }
}

/// Short display names, one per class in index order: for ImageNet the first lemma of each
/// line (`"tabby"`), else the names as given.
pub fn names(labels: &Labels) -> Vec<String> {
    full_names(labels)
        .into_iter()
        .map(|l| short(labels, l).to_string())
        .collect()
}

/// The short display name of class `i`; `"class {i}"` when `i` is past the end of the list.
pub fn name(labels: &Labels, i: usize) -> String {
    match line(labels, i) {
        Some(l) => short(labels, l).to_string(),
        None => format!("class {i}"),
    }
}

/// The full line for class `i` (ImageNet: all lemmas); `"class {i}"` when out of range.
pub fn full_name(labels: &Labels, i: usize) -> String {
    line(labels, i).map_or_else(|| format!("class {i}"), str::to_string)
}

/// How many names the label set has.
pub fn len(labels: &Labels) -> usize {
    match labels {
        Labels::Imagenet => IMAGENET_LEN,
        Labels::FashionMnist => FASHION_MNIST.lines().count(),
        Labels::Custom(v) => v.len(),
    }
}

fn line(labels: &Labels, i: usize) -> Option<&str> {
    match labels {
        Labels::Imagenet => IMAGENET.lines().nth(i),
        Labels::FashionMnist => FASHION_MNIST.lines().nth(i),
        Labels::Custom(v) => v.get(i).map(String::as_str),
    }
}

/// ImageNet lines are comma-separated lemma lists: keep the first. Other sets' names may
/// contain commas of their own, so they are kept whole.
fn short<'a>(labels: &Labels, line: &'a str) -> &'a str {
    match labels {
        Labels::Imagenet => line.split(',').next().unwrap_or(line).trim(),
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_has_1000_known_names() {
        let n = names(&Labels::Imagenet);
        assert_eq!(n.len(), IMAGENET_LEN);
        assert_eq!(len(&Labels::Imagenet), IMAGENET_LEN);
        assert_eq!(n[0], "tench");
        assert_eq!(n[1], "goldfish");
        assert_eq!(n[281], "tabby");
        assert_eq!(full_name(&Labels::Imagenet, 281), "tabby, tabby cat");
        assert_eq!(n[954], "banana");
        assert_eq!(n[999], "toilet tissue");
        assert!(n.iter().all(|s| !s.is_empty()));
    }

    #[test]
    fn fashion_mnist_names() {
        let n = names(&Labels::FashionMnist);
        assert_eq!(
            n,
            [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot"
            ]
        );
    }

    #[test]
    fn out_of_range_never_panics() {
        assert_eq!(name(&Labels::Imagenet, 1000), "class 1000");
        assert_eq!(name(&Labels::FashionMnist, 10), "class 10");
        assert_eq!(
            full_name(&Labels::FashionMnist, usize::MAX),
            format!("class {}", usize::MAX)
        );
        let c = Labels::Custom(vec!["a, b".into()]);
        assert_eq!(name(&c, 0), "a, b");
        assert_eq!(name(&c, 1), "class 1");
    }
}
