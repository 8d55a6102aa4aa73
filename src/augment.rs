//! The paper's training augmentations (section 4.1), per image and per epoch:
//! 1. random crops: the paper takes 224x224 patches of 256x256 images; here the 28x28
//!    Fashion-MNIST image is placed anywhere on the 32x32 canvas (the same as a random 32x32
//!    crop of the image padded by 4), always wholly inside;
//! 2. horizontal flips, with probability 1/2;
//! 3. PCA lighting: with `p_i`, `l_i` the eigenvectors and eigenvalues of the 3x3 covariance
//!    of the training set's RGB pixel values, every pixel of an image gets
//!    `[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T` added, `a_i ~ N(0, 0.1)` drawn once per image per
//!    epoch.
//!
//! Draws are seeded by `(seed, image)`, the trainer's seed being `(run seed, epoch)`, so a
//! resumed run sees the same images as an uninterrupted one.

use crate::tensor::{splitmix64, Rng};

/// Which augmentations are on.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    pub crops: bool,
    pub flips: bool,
    /// Standard deviation of the `a_i` (the paper: 0.1); 0 turns PCA lighting off.
    pub pca_std: f32,
}

impl Default for Augment {
    fn default() -> Augment {
        Augment {
            crops: true,
            flips: true,
            pca_std: 0.1,
        }
    }
}

/// Eigen-decomposition of the RGB covariance: `values[i]` with eigenvector `vectors[i]`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pca {
    pub values: [f32; 3],
    pub vectors: [[f32; 3]; 3],
}

/// Where and how one image is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    /// Top-left corner of the image on the canvas `(x, y)`.
    pub offset: (usize, usize),
    pub flip: bool,
    /// Added to every pixel's R, G, B (in the `[0, 1]` units of the pixel values).
    pub shift: [f32; 3],
}

impl Draw {
    pub fn identity(offset: (usize, usize)) -> Draw {
        Draw {
            offset,
            flip: false,
            shift: [0.0; 3],
        }
    }
}

/// The seed of image `image`'s draws under run/epoch seed `seed`.
pub fn image_seed(seed: u64, image: usize) -> u64 {
    splitmix64(seed ^ splitmix64(image as u64 ^ 0x5eed_1a9e))
}

impl Augment {
    /// Off: every image centred, unflipped, unlit.
    pub fn none() -> Augment {
        Augment {
            crops: false,
            flips: false,
            pca_std: 0.0,
        }
    }

    /// One image's draw: a `size` = `[w, h]` image on a `side` x `side` canvas (`centre`
    /// without crops).
    pub fn draw(
        &self,
        rng: &mut Rng,
        pca: &Pca,
        side: usize,
        size: [usize; 2],
        centre: (usize, usize),
    ) -> Draw {
        let mut pick = |room: usize| (rng.next_u64() % (room as u64 + 1)) as usize;
        let offset = if self.crops {
            (pick(side - size[0]), pick(side - size[1]))
        } else {
            centre
        };
        let flip = self.flips && rng.next_u64() & 1 == 1;
        let mut shift = [0.0f32; 3];
        if self.pca_std > 0.0 {
            for (value, vector) in pca.values.iter().zip(&pca.vectors) {
                let a = rng.normal() * self.pca_std;
                for (s, p) in shift.iter_mut().zip(vector) {
                    *s += p * a * value;
                }
            }
        }
        Draw {
            offset,
            flip,
            shift,
        }
    }
}

/// The paper's ten test views (section 4.1: five patches and their mirrors, the network's
/// softmax averaged over them), for a `size` = `[w, h]` image on a `side` x `side` canvas:
/// `view` 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right, 4 centre (`centre`),
/// 5..=9 the mirrors of 0..=4; the same order as [`crate::preprocess::crops_as_images`].
/// `None` for `view` >= 10.
pub fn test_view(
    view: usize,
    side: usize,
    size: [usize; 2],
    centre: (usize, usize),
) -> Option<Draw> {
    let (far_x, far_y) = (side.saturating_sub(size[0]), side.saturating_sub(size[1]));
    let offset = match view % 5 {
        0 => (0, 0),
        1 => (far_x, 0),
        2 => (0, far_y),
        3 => (far_x, far_y),
        _ => centre,
    };
    (view < 10).then_some(Draw {
        offset,
        flip: view >= 5,
        shift: [0.0; 3],
    })
}

// 3x3 matrix code reads best with indices
#[allow(clippy::needless_range_loop)]
/// The PCA of the covariance of RGB pixels (f64 sums, Jacobi rotations for the symmetric
/// 3x3 matrix), eigenvalues in decreasing order.
pub fn rgb_pca(pixels: impl Iterator<Item = [f32; 3]>) -> Pca {
    let (mut n, mut s, mut ss) = (0f64, [0f64; 3], [[0f64; 3]; 3]);
    for p in pixels {
        n += 1.0;
        for i in 0..3 {
            s[i] += p[i] as f64;
            for j in 0..3 {
                ss[i][j] += p[i] as f64 * p[j] as f64;
            }
        }
    }
    let n = n.max(1.0);
    let mut cov = [[0f64; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            cov[i][j] = ss[i][j] / n - (s[i] / n) * (s[j] / n);
        }
    }
    let (values, vectors) = jacobi3(cov);
    let mut order = [0usize, 1, 2];
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    Pca {
        values: order.map(|i| values[i].max(0.0) as f32),
        vectors: order.map(|i| {
            [
                vectors[0][i] as f32,
                vectors[1][i] as f32,
                vectors[2][i] as f32,
            ]
        }),
    }
}

/// Eigenvalues and eigenvectors (columns of the second) of a symmetric 3x3 matrix.
#[allow(clippy::needless_range_loop)]
fn jacobi3(mut a: [[f64; 3]; 3]) -> ([f64; 3], [[f64; 3]; 3]) {
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..50 {
        let off = a[0][1].powi(2) + a[0][2].powi(2) + a[1][2].powi(2);
        if off < 1e-30 {
            break;
        }
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            if a[p][q].abs() < 1e-300 {
                continue;
            }
            let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
            let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
            let t = if theta == 0.0 { 1.0 } else { t };
            let c = 1.0 / (t * t + 1.0).sqrt();
            let s = t * c;
            // A <- J^T A J with the rotation J in the (p, q) plane
            for k in 0..3 {
                let (akp, akq) = (a[k][p], a[k][q]);
                a[k][p] = c * akp - s * akq;
                a[k][q] = s * akp + c * akq;
            }
            for k in 0..3 {
                let (apk, aqk) = (a[p][k], a[q][k]);
                a[p][k] = c * apk - s * aqk;
                a[q][k] = s * apk + c * aqk;
            }
            for row in v.iter_mut() {
                let (vp, vq) = (row[p], row[q]);
                row[p] = c * vp - s * vq;
                row[q] = s * vp + c * vq;
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2]], v)
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    #[test]
    fn pca_recovers_a_known_covariance() {
        // pixels = mean + sum_i z_i sqrt(l_i) e_i with orthonormal e_i
        let e = [
            [1.0f32 / 3f32.sqrt(); 3],
            [1.0 / 2f32.sqrt(), -1.0 / 2f32.sqrt(), 0.0],
            [1.0 / 6f32.sqrt(), 1.0 / 6f32.sqrt(), -2.0 / 6f32.sqrt()],
        ];
        let l = [0.09f32, 0.01, 0.0025];
        let mut rng = Rng::new(3);
        let px: Vec<[f32; 3]> = (0..200_000)
            .map(|_| {
                let z = [rng.normal(), rng.normal(), rng.normal()];
                let mut p = [0.5f32; 3];
                for i in 0..3 {
                    for (c, pc) in p.iter_mut().enumerate() {
                        *pc += z[i] * l[i].sqrt() * e[i][c];
                    }
                }
                p
            })
            .collect();
        let pca = rgb_pca(px.into_iter());
        for i in 0..3 {
            assert!((pca.values[i] - l[i]).abs() < 0.03 * l[0], "{pca:?}");
            let dot: f32 = (0..3).map(|c| pca.vectors[i][c] * e[i][c]).sum();
            assert!(dot.abs() > 0.99, "eigenvector {i}: {pca:?}");
        }
    }

    #[test]
    fn pca_shift_has_the_papers_covariance() {
        // shift = sum_i a_i l_i p_i, a_i ~ N(0, s^2): Cov = sum_i s^2 l_i^2 p_i p_i^T
        let pca = Pca {
            values: [0.2, 0.05, 0.01],
            vectors: [[0.6, 0.8, 0.0], [-0.8, 0.6, 0.0], [0.0, 0.0, 1.0]],
        };
        let aug = Augment::default();
        let mut rng = Rng::new(11);
        let n = 200_000;
        let mut cov = [[0f64; 3]; 3];
        for _ in 0..n {
            let d = aug.draw(&mut rng, &pca, 32, [28, 28], (2, 2));
            for i in 0..3 {
                for j in 0..3 {
                    cov[i][j] += (d.shift[i] * d.shift[j]) as f64 / n as f64;
                }
            }
        }
        for i in 0..3 {
            for j in 0..3 {
                let want: f64 = (0..3)
                    .map(|k| {
                        let s = (aug.pca_std * pca.values[k]) as f64;
                        s * s * (pca.vectors[k][i] * pca.vectors[k][j]) as f64
                    })
                    .sum();
                let scale = (aug.pca_std * pca.values[0]).powi(2) as f64;
                assert!(
                    (cov[i][j] - want).abs() < 0.02 * scale,
                    "cov[{i}][{j}] {} vs {want}",
                    cov[i][j]
                );
            }
        }
    }

    #[test]
    fn test_views_are_the_corners_the_centre_and_their_mirrors() {
        let views: Vec<Draw> = (0..10)
            .map(|v| test_view(v, 32, [28, 28], (2, 2)).unwrap())
            .collect();
        let offsets: Vec<(usize, usize)> = views[..5].iter().map(|d| d.offset).collect();
        assert_eq!(offsets, [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]);
        for i in 0..5 {
            assert!(!views[i].flip && views[i + 5].flip);
            assert_eq!(views[i].offset, views[i + 5].offset);
        }
        assert!(views.iter().all(|d| d.shift == [0.0; 3]));
        assert!(test_view(10, 32, [28, 28], (2, 2)).is_none());
    }

    #[test]
    fn crops_stay_inside_and_cover_every_offset_and_flips_are_fair() {
        let aug = Augment::default();
        let pca = Pca {
            values: [0.0; 3],
            vectors: [[0.0; 3]; 3],
        };
        let mut rng = Rng::new(5);
        let mut seen = [[false; 5]; 5];
        let mut flips = 0;
        for _ in 0..10_000 {
            let d = aug.draw(&mut rng, &pca, 32, [28, 28], (2, 2));
            assert!(d.offset.0 + 28 <= 32 && d.offset.1 + 28 <= 32, "{d:?}");
            seen[d.offset.1][d.offset.0] = true;
            flips += d.flip as usize;
        }
        assert!(seen.iter().flatten().all(|&s| s), "every offset occurs");
        assert!((4_700..5_300).contains(&flips), "{flips} flips of 10000");
        let off = Augment::none().draw(&mut rng, &pca, 32, [28, 28], (2, 2));
        assert_eq!(off, Draw::identity((2, 2)));
    }
}
