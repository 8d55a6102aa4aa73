// lib/lrn_tile.wgsl: the block walk both tiled LRN kernels share (lrn_tiled, lrn_bwd_tiled;
// include lib/lrn.wgsl too). One workgroup of WG invocations handles 32 channels (from
// c0 = wid.y * 32) x 64 pixels (from p0 = wid.x * 64) of image n = wid.z:
// - it stages one term per (channel, pixel) for channels [c0 - before, c0 + 32 + after)
//   clipped to [0, C), each computed once by the kernel's `fn lrn_term(e: u32) -> f32` from
//   flat element e of the (N, C, H*W) tensors (0 outside the tensor);
// - then invocation (pixel li % 64, lane li / 64) computes channels c = c0 + lane + 4t,
//   t in 0..8: it takes the staged values f(term_j) (the kernel's `fn lrn_window(v: f32)
//   -> f32`) for j = lo..=hi, lo = max(0, c - before), hi = min(C-1, c + after), summed in
//   ascending channel order in f32, and hands the kernel's
//   `fn lrn_finish(i: u32, center: f32, sum: f32)` flat element i, its own staged term and
//   that sum.
// Limits: the block plus its halo is at most LRN_ROWS = 64 rows (size <= 33): 16 KiB of
// workgroup memory, WebGPU's default.

// staged[row * LRN_PIX + pixel], row = channel - (c0 - before)
var<workgroup> staged: array<f32, 4096>;

fn lrn_block(wid: vec3<u32>, li: u32, before: u32, after: u32) {
    let p0 = wid.x * LRN_PIX;
    let c0 = wid.y * LRN_CHANNELS;
    let n = wid.z;
    let first = i32(c0) - i32(before); // channel of row 0 (may be negative)
    let rows = min(LRN_ROWS, LRN_CHANNELS + before + after);
    let plane0 = n * p.c * p.hw;

    for (var e = li; e < rows * LRN_PIX; e += WG) {
        let row = e / LRN_PIX;
        let px = e % LRN_PIX;
        let ch = first + i32(row);
        var v = 0.0;
        if ch >= 0 && ch < i32(p.c) && p0 + px < p.hw {
            v = lrn_term(plane0 + u32(ch) * p.hw + p0 + px);
        }
        staged[e] = v;
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
            sum += lrn_window(staged[u32(i32(j) - first) * LRN_PIX + px]);
        }
        let center = staged[u32(i32(c) - first) * LRN_PIX + px];
        lrn_finish(plane0 + c * p.hw + p0 + px, center, sum);
    }
}
