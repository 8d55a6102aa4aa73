// lib/window.wgsl: which outputs of a strided window read a given input position, along one
// axis: the bounds of the gathers that compute an input gradient (conv_bwd_data,
// maxpool_bwd), as cpu::conv2d_backward and cpu::maxpool_backward bound them.

// [lo, hi) of the outputs whose window of k taps at stride s contains input position
// t - pad (t has the leading pad added): oy in [ceil((t + 1 - k) / s), floor(t / s)] clipped
// to [0, outs). The lower bound is taken in i32: it is negative near the leading edge.
fn outs_for_input(t: u32, k: u32, s: u32, outs: u32) -> vec2<u32> {
    let first = i32(t) - i32(k) + 1;
    var lo = 0u;
    if first > 0 {
        lo = (u32(first) + s - 1u) / s;
    }
    let hi = min(t / s + 1u, outs);
    return vec2<u32>(lo, max(hi, lo));
}
