// lrn_tiled.wgsl: local response normalisation across channels (as lrn.wgsl), with each
// channel window read from workgroup memory instead of `size` times from global memory.
//
// One workgroup normalises a block of 32 channels x 64 pixels of one image: it first loads
// x for channels [c0 - (size-1)/2, c0 + 32 + size/2) (clipped to [0, C)) x those 64 pixels
// into workgroup memory (one global read per value), then invocation (pixel li % 64, lane
// li / 64) computes channels c0 + lane + 4t, t in 0..8:
//   scale = k + alpha_eff * sum_{j = lo..=hi} x[n, j, pixel]^2,
//   lo = max(0, c - (size-1)/2), hi = min(C-1, c + size/2),   out = x * scale^(-beta),
// summing in ascending channel order in f32 exactly as lrn.wgsl and cpu::lrn do.
// Bindings: 0 uniform LrnParams { count, c, hw, size, alpha_eff, beta, k } (lrn.wgsl's),
// 1 x (read), 2 out (write), 3 scale (write). Shapes (N, C, H*W).
// Limits: size <= 33 (the block plus its halo is at most 64 rows: 16 KiB of workgroup
// memory, WebGPU's default); the host uses lrn.wgsl beyond that.
// Dispatch: (ceil(H*W / 64), ceil(C / 32), N).
// The block walk is lib/lrn_tile.wgsl's; this file gives its staged term and the output.

// #include lib/lrn.wgsl
// #include lib/lrn_tile.wgsl

// The staged term is x itself; the window sums its squares.
fn lrn_term(e: u32) -> f32 {
    return x[e];
}

fn lrn_window(v: f32) -> f32 {
    return v * v;
}

fn lrn_finish(i: u32, center: f32, sum: f32) {
    let s = p.k + p.alpha_eff * sum;
    scale[i] = s;
    out[i] = center * pow(s, -p.beta);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // the forward window: (size-1)/2 channels before, size/2 after
    lrn_block(wid, li, (p.size - 1u) / 2u, p.size / 2u);
}
