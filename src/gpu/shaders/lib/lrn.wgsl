// lib/lrn.wgsl: the uniform parameters of the LRN kernels (gpu::params::LrnParams): count =
// N*C*H*W, c channels, hw = H*W, the window size, alpha already divided by the size where
// the convention asks (alpha_eff), beta and k.

struct LrnParams {
    count: u32,
    c: u32,
    hw: u32,
    size: u32,
    alpha_eff: f32,
    beta: f32,
    k: f32,
}
