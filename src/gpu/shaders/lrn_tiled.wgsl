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

// #include lib/lrn.wgsl

// xs[row * PIX + pixel], row = channel - (c0 - (size-1)/2)
var<workgroup> xs: array<f32, 4096>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let p0 = wid.x * LRN_PIX;
    let c0 = wid.y * LRN_CHANNELS;
    let n = wid.z;
    let before = (p.size - 1u) / 2u;
    let after = p.size / 2u;
    let first = i32(c0) - i32(before); // channel of row 0 (may be negative)
    let rows = min(LRN_ROWS, LRN_CHANNELS + before + after);
    let plane0 = n * p.c * p.hw;

    for (var e = li; e < rows * LRN_PIX; e += WG) {
        let row = e / LRN_PIX;
        let px = e % LRN_PIX;
        let ch = first + i32(row);
        var v = 0.0;
        if ch >= 0 && ch < i32(p.c) && p0 + px < p.hw {
            v = x[plane0 + u32(ch) * p.hw + p0 + px];
        }
        xs[e] = v;
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
            let a = xs[u32(i32(j) - first) * LRN_PIX + px];
            sum += a * a;
        }
        let s = p.k + p.alpha_eff * sum;
        let i = plane0 + c * p.hw + p0 + px;
        scale[i] = s;
        out[i] = xs[u32(i32(c) - first) * LRN_PIX + px] * pow(s, -p.beta);
    }
}
