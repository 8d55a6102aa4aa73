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

// [lo, hi) of the window of output o along one axis, clipped to the input 0..len: from
// o*s - pad (i32, negative in the padding) for k taps.
fn window_range(o: u32, s: u32, pad: u32, k: u32, len: u32) -> vec2<u32> {
    let start = i32(o * s) - i32(pad);
    return vec2<u32>(u32(max(start, 0)), u32(min(start + i32(k), i32(len))));
}

struct AvgPoolParams {
    count: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
}

// [floor(o*len/outs), ceil((o+1)*len/outs)): the adaptive region of output o along one axis
// (shape::adaptive_range's definition).
fn adaptive_range(o: u32, len: u32, outs: u32) -> vec2<u32> {
    return vec2<u32>((o * len) / outs, ((o + 1u) * len + outs - 1u) / outs);
}
