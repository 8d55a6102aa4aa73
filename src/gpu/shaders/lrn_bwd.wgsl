// lrn_bwd.wgsl: gradient of LRN across channels, using the forward's saved scale.
//
// One invocation computes one element (n, i, pixel) of dx:
//   dx_i = dout_i * scale_i^(-beta)
//          - 2 alpha_eff beta x_i * sum_{j = lo..=hi} dout_j * out_j / scale_j,
//   lo = max(0, i - size/2), hi = min(C-1, i + (size-1)/2)   (the reverse window: the j whose
//   forward window contains i; it differs from the forward window when size is even),
// summed in f32 in ascending channel order as cpu::lrn_backward.
// Bindings: 0 uniform LrnParams { count, c, hw, size, alpha_eff, beta, k }, 1 dout (read),
// 2 x (read), 3 out (read), 4 scale (read), 5 dx (write). Shapes (N, C, H*W).
// Dispatch: elementwise grid over count = N*C*H*W (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/lrn.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let c = (i / p.hw) % p.c;
    let base = i - c * p.hw; // element (n, 0, pixel)
    let lo = u32(max(i32(c) - i32(p.size / 2u), 0));
    let hi = min(p.c - 1u, c + (p.size - 1u) / 2u);
    var sum = 0.0;
    for (var j = lo; j <= hi; j++) {
        let e = base + j * p.hw;
        sum += dout[e] * out[e] / scale[e];
    }
    dx[i] = dout[i] * pow(scale[i], -p.beta) - 2.0 * p.alpha_eff * p.beta * x[i] * sum;
}
