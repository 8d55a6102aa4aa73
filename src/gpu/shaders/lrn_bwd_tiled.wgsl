// lrn_bwd_tiled.wgsl: gradient of LRN across channels (as lrn_bwd.wgsl), with the reverse
// channel window's terms read from workgroup memory.
//
// One workgroup handles a block of 32 channels x 64 pixels of one image: it first stores
// t_j = dout_j * out_j / scale_j for channels [c0 - size/2, c0 + 32 + (size-1)/2) (clipped
// to [0, C)) x those pixels in workgroup memory (each computed once), then invocation
// (pixel li % 64, lane li / 64) computes channels i = c0 + lane + 4t, t in 0..8:
//   dx_i = dout_i * scale_i^(-beta) - 2 alpha_eff beta x_i * sum_{j = lo..=hi} t_j,
//   lo = max(0, i - size/2), hi = min(C-1, i + (size-1)/2)   (the reverse window),
// summed in ascending channel order in f32, exactly as lrn_bwd.wgsl and cpu::lrn_backward.
// Bindings: 0 uniform LrnParams (lrn.wgsl's), 1 dout (read), 2 x (read), 3 out (read),
// 4 scale (read), 5 dx (write). Shapes (N, C, H*W).
// Limits: size <= 33 (16 KiB of workgroup memory); the host uses lrn_bwd.wgsl beyond that.
// Dispatch: (ceil(H*W / 64), ceil(C / 32), N).
// The block walk is lib/lrn_tile.wgsl's; this file gives its staged term and the output.

// #include lib/lrn.wgsl
// #include lib/lrn_tile.wgsl

// The staged term is t_j = dout_j * out_j / scale_j; the window sums it as it is.
fn lrn_term(e: u32) -> f32 {
    return dout[e] * out[e] / scale[e];
}

fn lrn_window(v: f32) -> f32 {
    return v;
}

fn lrn_finish(i: u32, center: f32, sum: f32) {
    dx[i] = dout[i] * pow(scale[i], -p.beta) - 2.0 * p.alpha_eff * p.beta * x[i] * sum;
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // the reverse window: size/2 channels before, (size-1)/2 after
    lrn_block(wid, li, p.size / 2u, (p.size - 1u) / 2u);
}
