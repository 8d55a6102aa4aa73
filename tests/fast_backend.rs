//! The fast CPU backend (`alexnet::fast`) against the CPU reference (`alexnet::cpu`, the
//! oracle): every layer on seeded random inputs with odd shapes (stride 4, pad 2, asymmetric
//! pads, groups 2, sizes that are not multiples of any block size, batch 1 and 3, one and
//! three threads), then the whole `mini`, `bvlc` and `torchvision` networks. Timings are
//! printed (run with `--nocapture`), never asserted.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{assert_close, assert_close_of_max, max_abs, random, random_input};

use alexnet::cpu;
use alexnet::fast::{self, FastCpu, Workspace};
use alexnet::model::{self, AvgPoolSpec, ConvSpec, LinearSpec, LrnAlpha, LrnSpec, Pads, PoolSpec};
use alexnet::net::{Mode, Model};
use alexnet::shape::Rounding;
use alexnet::tensor::Tensor;
use std::time::Instant;

/// Conv and FC: f32 accumulation in GEMM-blocked order against the reference's f64 sums.
/// The rounding error of a K-term f32 dot product is at most ~K * 2^-24 * sum|terms| and
/// in practice ~sqrt(K) * 2^-24 * that; with He-scaled weights sum|terms| is within a few
/// times the largest output, so for K up to ~10k (fc6: 9216) 1e-5 of the output's largest
/// magnitude holds with margin while any indexing error (an O(1) relative error) fails.
const GEMM_TOL_OF_MAX: f32 = 1e-5;
/// LRN: the running sum of squares drifts by a few ulps of the largest window sum, and
/// `s^-0.75` is computed as `1 / (sqrt(s) * sqrt(sqrt(s)))` (a few ulps from `powf`):
/// 1e-5 relative per element, plus 1e-6 of the largest output for values near zero.
const LRN_RTOL: f32 = 1e-5;
const LRN_ATOL_OF_MAX: f32 = 1e-6;
/// Pools take the same maxima and sum in the same order as the reference: bit-identical.
const EXACT: f32 = 0.0;
/// Softmax: f32 `exp` against the reference's f64 `exp`, f64 sums in both: ~1e-7 relative.
const SOFTMAX_RTOL: f32 = 1e-5;
/// Whole networks: every layer's GEMM error (above) feeds the next layer, through up to 8
/// GEMMs, LRN and softmax: 2e-4 of each output's largest magnitude.
const NET_TOL_OF_MAX: f32 = 2e-4;

struct ConvCase {
    c_in: usize,
    hw: [usize; 2],
    c_out: usize,
    k: [usize; 2],
    s: [usize; 2],
    pads: Pads,
    groups: usize,
}

#[rustfmt::skip]
fn conv_cases() -> Vec<ConvCase> {
    let pads = |top, left, bottom, right| Pads {
        top,
        left,
        bottom,
        right,
    };
    vec![
        // conv1-like: 11x11 stride 4 pad 2, odd channel counts
        ConvCase {
            c_in: 3,
            hw: [35, 31],
            c_out: 21,
            k: [11, 11],
            s: [4, 4],
            pads: Pads::same(2),
            groups: 1,
        },
        // the paper's asymmetric pads 1/2, non-square kernel and stride
        ConvCase {
            c_in: 5,
            hw: [17, 20],
            c_out: 7,
            k: [5, 3],
            s: [2, 3],
            pads: pads(1, 1, 2, 2),
            groups: 1,
        },
        // groups 2, 5x5 pad 2 (conv2-like), sizes not multiples of 16 and large enough
        // for the GEMM to be split across threads at batch 1
        ConvCase {
            c_in: 34,
            hw: [27, 27],
            c_out: 50,
            k: [5, 5],
            s: [1, 1],
            pads: Pads::same(2),
            groups: 2,
        },
        // groups 2, 3x3 pad 1 with top/left-only padding
        ConvCase {
            c_in: 6,
            hw: [9, 13],
            c_out: 10,
            k: [3, 3],
            s: [1, 1],
            pads: pads(1, 2, 0, 0),
            groups: 2,
        },
        // 1x1, stride 1, no padding: the im2col-free path
        ConvCase {
            c_in: 9,
            hw: [7, 5],
            c_out: 11,
            k: [1, 1],
            s: [1, 1],
            pads: Pads::default(),
            groups: 1,
        },
        // kernel larger than the padded input along one axis except one output
        ConvCase {
            c_in: 2,
            hw: [4, 6],
            c_out: 3,
            k: [4, 3],
            s: [3, 2],
            pads: pads(0, 1, 0, 1),
            groups: 1,
        },
    ]
}

#[test]
fn conv_matches_reference() {
    for (ci, c) in conv_cases().iter().enumerate() {
        let spec = ConvSpec {
            name: format!("conv{ci}"),
            in_channels: c.c_in,
            out_channels: c.c_out,
            kernel: c.k,
            stride: c.s,
            pads: c.pads,
            groups: c.groups,
        };
        for n in [1, 3] {
            let g = cpu::ConvGeom::new(&spec, n, c.hw[0], c.hw[1]).unwrap();
            let seed = (ci * 10 + n) as u64;
            let inp = random(g.inp_shape().iter().product(), seed, 1.0);
            let weight = random(g.weight_shape().iter().product(), seed + 100, 1.0);
            let bias = random(c.c_out, seed + 200, 1.0);
            let mut want = vec![0.0; g.out_shape().iter().product()];
            cpu::conv2d_forward(&g, &inp, &weight, &bias, &mut want).unwrap();
            let want_relu: Vec<f32> = want.iter().map(|v| v.max(0.0)).collect();
            for threads in [1, 3] {
                for relu in [false, true] {
                    let mut ws = Workspace::new(threads);
                    let mut got = vec![f32::NAN; want.len()];
                    fast::conv2d_forward(&mut ws, &g, &inp, &weight, &bias, &mut got, relu)
                        .unwrap();
                    let w = if relu { &want_relu } else { &want };
                    let name = format!("conv case {ci} n {n} threads {threads} relu {relu} {g:?}");
                    assert_close_of_max(&name, &got, w, GEMM_TOL_OF_MAX);
                }
            }
        }
    }
}

#[test]
fn conv_rejects_wrong_sizes() {
    let spec = ConvSpec {
        name: "c".into(),
        in_channels: 4,
        out_channels: 4,
        kernel: [3, 3],
        stride: [1, 1],
        pads: Pads::same(1),
        groups: 2,
    };
    let g = cpu::ConvGeom::new(&spec, 1, 5, 5).unwrap();
    let mut ws = Workspace::new(1);
    let mut out = vec![0.0; 100];
    let w = vec![0.0; 4 * 2 * 9];
    assert!(fast::conv2d_forward(&mut ws, &g, &[0.0; 99], &w, &[0.0; 4], &mut out, false).is_err());
    assert!(
        fast::conv2d_forward(&mut ws, &g, &[0.0; 100], &w, &[0.0; 3], &mut out, false).is_err()
    );
}

#[test]
fn linear_matches_reference() {
    // batch 1 and 3 take the weight-streaming GEMV, 5 and 7 the GEMM; (1000, 1100) is big
    // enough to be split across threads, (37, 29) is not a multiple of any block size.
    for (ni, no) in [(37, 29), (1000, 1100)] {
        let spec = LinearSpec {
            name: "fc".into(),
            in_features: ni,
            out_features: no,
        };
        for n in [1, 3, 4, 5, 7] {
            let g = cpu::LinearGeom::new(&spec, n);
            let seed = (ni + n) as u64;
            let x = random(n * ni, seed, 1.0);
            let weight = random(no * ni, seed + 1, 1.0);
            let bias = random(no, seed + 2, 1.0);
            let mut want = vec![0.0; n * no];
            cpu::linear_forward(&g, &x, &weight, &bias, &mut want).unwrap();
            let want_relu: Vec<f32> = want.iter().map(|v| v.max(0.0)).collect();
            for threads in [1, 3] {
                for relu in [false, true] {
                    let ws = Workspace::new(threads);
                    let mut got = vec![f32::NAN; n * no];
                    fast::linear_forward(&ws, &g, &x, &weight, &bias, &mut got, relu).unwrap();
                    let w = if relu { &want_relu } else { &want };
                    let name = format!("linear {ni}->{no} n {n} threads {threads} relu {relu}");
                    assert_close_of_max(&name, &got, w, GEMM_TOL_OF_MAX);
                }
            }
        }
    }
}

#[test]
fn lrn_matches_reference() {
    // odd and even windows, a window wider than the channel count, both alpha conventions,
    // the AlexNet beta and another one (the powf path)
    for (ci, (size, c, beta, k, mode)) in [
        (5, 11, 0.75, 2.0, LrnAlpha::OverN),
        (4, 7, 0.75, 1.0, LrnAlpha::Raw),
        (3, 6, 0.6, 1.5, LrnAlpha::OverN),
        (9, 5, 0.75, 1.0, LrnAlpha::OverN),
        (1, 3, 0.75, 2.0, LrnAlpha::OverN),
    ]
    .into_iter()
    .enumerate()
    {
        let spec = LrnSpec {
            name: "lrn".into(),
            size,
            alpha: 1e-2,
            beta,
            k,
            alpha_mode: mode,
        };
        for n in [1, 3] {
            let (h, w) = (9, 7);
            let g = cpu::LrnGeom::new(&spec, n, c, h, w).unwrap();
            let mut inp = random(n * c * h * w, ci as u64 + 50, 1.0);
            inp.iter_mut().for_each(|v| *v *= 10.0); // make the normalisation matter
            let mut want = vec![0.0; inp.len()];
            let mut scale = vec![0.0; inp.len()];
            cpu::lrn_forward(&g, &inp, &mut want, &mut scale).unwrap();
            for threads in [1, 3] {
                let ws = Workspace::new(threads);
                let mut got = vec![f32::NAN; inp.len()];
                fast::lrn_forward(&ws, &g, &inp, &mut got).unwrap();
                let name = format!("lrn case {ci} n {n} threads {threads}");
                assert_close(
                    &name,
                    &got,
                    &want,
                    LRN_RTOL,
                    LRN_ATOL_OF_MAX * max_abs(&want),
                );
            }
        }
    }
}

#[test]
fn pools_match_reference() {
    #[rustfmt::skip]
    let pools = [
        // AlexNet's overlapping 3/2, floor and ceil
        ([3, 3], [2, 2], Pads::default(), Rounding::Floor, [27, 27]),
        ([3, 3], [2, 2], Pads::default(), Rounding::Ceil, [54, 54]),
        // padding, non-square, ceil mode with a window hanging over the end
        (
            [3, 2],
            [2, 3],
            Pads {
                top: 1,
                left: 1,
                bottom: 0,
                right: 1,
            },
            Rounding::Ceil,
            [10, 13],
        ),
        ([2, 2], [2, 2], Pads::default(), Rounding::Floor, [7, 9]),
    ];
    for (pi, (kernel, stride, pads, rounding, [h, w])) in pools.into_iter().enumerate() {
        let spec = PoolSpec {
            name: "pool".into(),
            kernel,
            stride,
            pads,
            rounding,
        };
        for n in [1, 3] {
            let c = 5;
            let g = cpu::PoolGeom::new(&spec, n, c, h, w).unwrap();
            let inp = random(n * c * h * w, pi as u64 + 70, 1.0);
            let mut want = vec![0.0; g.out_shape().iter().product()];
            let mut argmax = vec![0u32; want.len()];
            cpu::maxpool_forward(&g, &inp, &mut want, &mut argmax).unwrap();
            for threads in [1, 3] {
                let ws = Workspace::new(threads);
                let mut got = vec![f32::NAN; want.len()];
                fast::maxpool_forward(&ws, &g, &inp, &mut got).unwrap();
                let name = format!("maxpool case {pi} n {n} threads {threads}");
                assert_close(&name, &got, &want, EXACT, EXACT);
            }
        }
    }
    // adaptive average pool: 13 -> 6 (overlapping windows), 6 -> 6, 5 -> 7 (upsampling)
    for (ai, (h, w, out)) in [(13, 13, [6, 6]), (6, 6, [6, 6]), (5, 4, [7, 3])]
        .into_iter()
        .enumerate()
    {
        let spec = AvgPoolSpec {
            name: "avgpool".into(),
            out,
        };
        for n in [1, 3] {
            let c = 4;
            let g = cpu::AvgPoolGeom::new(&spec, n, c, h, w).unwrap();
            let inp = random(n * c * h * w, ai as u64 + 90, 1.0);
            let mut want = vec![0.0; g.out_shape().iter().product()];
            cpu::adaptive_avgpool_forward(&g, &inp, &mut want).unwrap();
            for threads in [1, 3] {
                let ws = Workspace::new(threads);
                let mut got = vec![f32::NAN; want.len()];
                fast::adaptive_avgpool_forward(&ws, &g, &inp, &mut got).unwrap();
                let name = format!("avgpool case {ai} n {n} threads {threads}");
                assert_close(&name, &got, &want, EXACT, EXACT);
            }
        }
    }
}

#[test]
fn softmax_matches_reference() {
    for (n, k) in [(1, 10), (3, 1000), (2, 1)] {
        let mut x = random(n * k, k as u64, 1.0);
        x.iter_mut().for_each(|v| *v *= 8.0);
        let mut want = vec![0.0; n * k];
        cpu::softmax_forward(n, k, &x, &mut want).unwrap();
        let mut got = vec![f32::NAN; n * k];
        fast::softmax_forward(n, k, &x, &mut got).unwrap();
        assert_close(
            &format!("softmax n {n} k {k}"),
            &got,
            &want,
            SOFTMAX_RTOL,
            1e-12,
        );
    }
}

/// Every layer's output of `fast.forward_all` against `Model::forward_all` (eval), then
/// `forward` (fused ReLUs, relabelled identities) against the last of those, and
/// `forward_to` of a fused conv + ReLU prefix against `forward_all`'s output there.
fn check_network(arch: model::Arch, batches: &[usize], threads: usize) {
    let family = arch.family.as_str();
    let model = Model::random(arch, 7).unwrap();
    let mut fast = FastCpu::with_threads(&model, threads).unwrap();
    for &n in batches {
        let x = random_input(&model.arch, n, 11 + n as u64);
        let want = model.forward_all(&x, Mode::Eval).unwrap();
        let got = fast.forward_all(&x).unwrap();
        assert_eq!(got.len(), want.len());
        for ((g, w), layer) in got.iter().zip(&want).zip(model.layers()) {
            assert_eq!(g.shape, w.shape, "{family} {}", layer.name());
            let name = format!("{family} n {n} threads {threads} layer {}", layer.name());
            assert_close_of_max(&name, &g.data, &w.data, NET_TOL_OF_MAX);
        }
        let last = fast.forward(&x).unwrap();
        assert_eq!(
            &last,
            got.last().unwrap(),
            "{family}: forward != forward_all's last"
        );
        let i = model
            .layers()
            .iter()
            .position(|l| l.name() == "relu2")
            .unwrap();
        let prefix = fast.forward_to(&x, "relu2").unwrap();
        assert_eq!(prefix, got[i], "{family}: forward_to(relu2) != forward_all");
    }
}

#[test]
fn mini_matches_reference() {
    check_network(model::mini(), &[1, 2, 3], 1);
    check_network(model::mini(), &[1, 3], 3);
}

#[test]
fn bvlc_matches_reference() {
    check_network(model::bvlc(), &[1], fast::default_threads());
}

#[test]
fn torchvision_matches_reference() {
    check_network(model::torchvision(), &[1], fast::default_threads());
}

#[test]
fn wrong_input_shape_is_an_error() {
    let model = Model::random(model::mini(), 1).unwrap();
    let mut fast = FastCpu::new(&model).unwrap();
    assert!(fast.forward(&Tensor::zeros(&[1, 3, 31, 32])).is_err());
    assert!(fast.forward(&Tensor::zeros(&[3, 32, 32])).is_err());
    assert!(fast
        .forward_to(&Tensor::zeros(&[1, 3, 32, 32]), "nope")
        .is_err());
}

/// Wall time of the fastest of `reps` runs of `f`, in milliseconds.
fn best_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Prints reference vs fast forward times (never asserts them).
#[test]
fn timing_reference_vs_fast() {
    let threads = fast::default_threads();
    for (arch, n, reps) in [(model::bvlc(), 1, 3), (model::mini(), 128, 3)] {
        let family = arch.family.as_str();
        let model = Model::random(arch, 3).unwrap();
        let x = random_input(&model.arch, n, 5);
        let reference = best_ms(1, || {
            model.forward(&x).unwrap();
        });
        let mut one = FastCpu::with_threads(&model, 1).unwrap();
        one.forward(&x).unwrap(); // warm up: buffers, page faults
        let single = best_ms(reps, || {
            one.forward(&x).unwrap();
        });
        let mut all = FastCpu::with_threads(&model, threads).unwrap();
        all.forward(&x).unwrap();
        let multi = best_ms(reps, || {
            all.forward(&x).unwrap();
        });
        println!(
            "timing {family} batch {n}: reference {reference:.0} ms, fast 1 thread {single:.1} ms, fast {threads} threads {multi:.1} ms (x{:.0} faster)",
            reference / multi
        );
    }
}
