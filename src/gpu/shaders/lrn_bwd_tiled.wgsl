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

// #include lib/lrn.wgsl

// ts[row * PIX + pixel], row = channel - (c0 - size/2)
var<workgroup> ts: array<f32, 4096>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let p0 = wid.x * LRN_PIX;
    let c0 = wid.y * LRN_CHANNELS;
    let n = wid.z;
    let before = p.size / 2u;
    let after = (p.size - 1u) / 2u;
    let first = i32(c0) - i32(before);
    let rows = min(LRN_ROWS, LRN_CHANNELS + before + after);
    let plane0 = n * p.c * p.hw;

    for (var e = li; e < rows * LRN_PIX; e += WG) {
        let row = e / LRN_PIX;
        let px = e % LRN_PIX;
        let ch = first + i32(row);
        var v = 0.0;
        if ch >= 0 && ch < i32(p.c) && p0 + px < p.hw {
            let g = plane0 + u32(ch) * p.hw + p0 + px;
            v = dout[g] * out[g] / scale[g];
        }
        ts[e] = v;
    }
    workgroupBarrier();

    let px = li % LRN_PIX;
    let lane = li / LRN_PIX;
    if p0 + px >= p.hw {
        return;
    }
    for (var t = 0u; t < LRN_CHANNELS / 4u; t++) {
        let c = c0 + lane + 4u * t;
        if c >= p.c {
            break;
        }
        let lo = u32(max(i32(c) - i32(before), 0));
        let hi = min(p.c - 1u, c + after);
        var sum = 0.0;
        for (var j = lo; j <= hi; j++) {
            sum += ts[u32(i32(j) - first) * LRN_PIX + px];
        }
        let i = plane0 + c * p.hw + p0 + px;
        dx[i] = dout[i] * pow(scale[i], -p.beta) - 2.0 * p.alpha_eff * p.beta * x[i] * sum;
    }
}
