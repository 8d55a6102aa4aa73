// lib/pool.wgsl: the uniform parameters of the pooling kernels (gpu::params::PoolParams and
// AvgPoolParams). Shapes: x (N, C, H, W), out (N, C, OH, OW); count is the length of what
// one kernel writes.

struct PoolParams {
    count: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    pad_top: u32,
    pad_left: u32,
}

struct AvgPoolParams {
    count: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
}
