// lrn.wgsl: local response normalisation across channels (paper section 3.3, ONNX LRN).
//
// One invocation computes one element (n, c, pixel) of out and of the saved scale:
//   scale = k + alpha_eff * sum_{j = lo..=hi} x[n, j, pixel]^2,
//   lo = max(0, c - (size-1)/2), hi = min(C-1, c + size/2)   (ONNX's window, as lrn.rs)
//   out = x[n, c, pixel] * scale^(-beta)
// alpha_eff is LrnSpec::effective_alpha() (the paper's alpha, or Caffe's alpha / n).
// The sum runs in ascending channel order in f32, as the CPU reference does.
// Bindings: 0 uniform LrnParams { count, c, hw, size, alpha_eff, beta, k },
// 1 x (read), 2 out (write), 3 scale (write; saved for backward). Shapes (N, C, H*W).
// Dispatch: elementwise grid (see relu.wgsl): ceil(count / 256) workgroups folded into 2-D.

// #include lib/grid.wgsl
// #include lib/lrn.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let pix = i % p.hw;
    let c = (i / p.hw) % p.c;
    let base = i - c * p.hw; // element (n, 0, pixel)
    let lo = u32(max(i32(c) - i32((p.size - 1u) / 2u), 0));
    let hi = min(p.c - 1u, c + p.size / 2u);
    var sum = 0.0;
    for (var j = lo; j <= hi; j++) {
        let a = x[base + j * p.hw];
        sum += a * a;
    }
    let s = p.k + p.alpha_eff * sum;
    scale[i] = s;
    out[i] = x[i] * pow(s, -p.beta);
}
