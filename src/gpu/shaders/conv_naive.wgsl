// conv_naive.wgsl: 2-D convolution with groups, stride, asymmetric pads, bias and an
// optional fused ReLU; the simple fallback and the GPU-side oracle for conv_tiled.wgsl.
//
// One invocation computes one output element out[n, co, oy, ox]:
//   out = bias[co] + sum_{c, ky, kx} w[wrow, c, ky, kx] * x[n, g*cin_g + c, iy, ix]
//   iy = oy*sh + ky - pad_top, ix = ox*sw + kx - pad_left (i32; outside the input reads 0)
// over the output channels this dispatch covers: group g in 0..groups, local channel
// m in 0..cout_g, weight row wrow = g*cout_g + m (rows of the bound weight), output channel
// co = co_base + wrow of an output tensor with c_out channels (co_base > 0 when a weight is
// split into row blocks).
// Shapes: x (N, C_in, H, W), w (groups*cout_g, cin_g, KH, KW), bias (C_out),
// out (N, C_out, OH, OW).
// Bindings: 0 uniform ConvParams, 1 x (read), 2 w (read), 3 bias (read), 4 out (write).
// Dispatch: elementwise grid over count = N * groups*cout_g * OH*OW invocations (see
// relu.wgsl): ceil(count / 256) workgroups folded into 2-D.

// #include lib/conv.wgsl
// #include lib/grid.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let rows = p.groups * p.cout_g;
    let count = p.n * rows * p.oh * p.ow;
    let i = flat_index(grid);
    if i >= count { return; }
    let at = tensor_coords(i, p.ow, p.oh, rows); // (ox, oy, wrow, n)
    let ox = at.x;
    let oy = at.y;
    let wrow = at.z;
    let n = at.w;
    let g = wrow / p.cout_g;
    let co = p.co_base + wrow;

    let iy0 = i32(oy * p.sh) - i32(p.pad_top);
    let ix0 = i32(ox * p.sw) - i32(p.pad_left);
    var acc = bias[co];
    for (var c = 0u; c < p.cin_g; c++) {
        let xc = (n * p.c_in + g * p.cin_g + c) * p.h;
        let wc = (wrow * p.cin_g + c) * p.kh;
        for (var ky = 0u; ky < p.kh; ky++) {
            let iy = iy0 + i32(ky);
            if iy < 0 || iy >= i32(p.h) {
                continue;
            }
            for (var kx = 0u; kx < p.kw; kx++) {
                let ix = ix0 + i32(kx);
                if ix < 0 || ix >= i32(p.w) {
                    continue;
                }
                acc += wt[(wc + ky) * p.kw + kx] * x[(xc + u32(iy)) * p.w + u32(ix)];
            }
        }
    }
    if p.relu != 0u {
        acc = max(acc, 0.0);
    }
    out[((n * p.c_out + co) * p.oh + oy) * p.ow + ox] = acc;
}
