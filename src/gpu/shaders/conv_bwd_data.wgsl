// conv_bwd_data.wgsl: gradient of a convolution (groups, stride, asymmetric pads) with
// respect to its input, written as a gather (no atomics).
//
// One invocation computes one input-gradient element dx[n, ci, y, x]:
//   dx = sum_{m in 0..cout_g, oy, ox} dout[n, g*cout_g + m, oy, ox] * w[g*cout_g + m, c, ky, kx]
//   with g = ci / cin_g, c = ci % cin_g, ky = y + pad_top - oy*sh, kx = x + pad_left - ox*sw,
// over the outputs that read (y, x): oy in [ceil((y + pad_top - KH + 1) / sh),
// floor((y + pad_top) / sh)] clipped to [0, OH) (likewise ox), as cpu::conv2d_backward.
// Signed (i32) arithmetic for the lower bound, which is negative near the top edge.
// Shapes: dout (N, C_out, OH, OW), w (C_out, cin_g, KH, KW), dx (N, C_in, H, W).
// Bindings: 0 uniform ConvParams, 1 dout (read), 2 w (read), 3 dx (write).
// Dispatch: elementwise grid over count = N * C_in * H * W (see relu.wgsl).

// #include lib/conv.wgsl
// #include lib/grid.wgsl
// #include lib/window.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.n * p.c_in * p.h * p.w { return; }
    let at = tensor_coords(i, p.w, p.h, p.c_in); // (x, y, ci, n)
    let g = at.z / p.cin_g;
    let c = at.z % p.cin_g;
    let ty = at.y + p.pad_top;
    let tx = at.x + p.pad_left;
    let ry = outs_for_input(ty, p.kh, p.sh, p.oh);
    let rx = outs_for_input(tx, p.kw, p.sw, p.ow);
    var acc = 0.0;
    for (var m = 0u; m < p.cout_g; m++) {
        let o = g * p.cout_g + m;
        let dbase = (at.w * p.c_out + o) * p.oh;
        let wbase = (o * p.cin_g + c) * p.kh;
        for (var oy = ry.x; oy < ry.y; oy++) {
            let ky = ty - oy * p.sh;
            for (var ox = rx.x; ox < rx.y; ox++) {
                let kx = tx - ox * p.sw;
                acc += dout[(dbase + oy) * p.ow + ox] * wt[(wbase + ky) * p.kw + kx];
            }
        }
    }
    dx[i] = acc;
}
