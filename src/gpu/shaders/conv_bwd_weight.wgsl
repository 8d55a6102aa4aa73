// conv_bwd_weight.wgsl: gradient of a convolution with respect to its weight.
//
// One invocation computes one weight-gradient element dw[o, c, ky, kx]:
//   dw = sum_{n, oy, ox} dout[n, o, oy, ox] * x[n, g*cin_g + c, oy*sh + ky - pad_top,
//                                                ox*sw + kx - pad_left],  g = o / cout_g,
// over the outputs whose tap (ky, kx) lands inside the input: oy in
// [ceil((pad_top - ky) / sh), ceil((H + pad_top - ky) / sh)) clipped to [0, OH) (likewise
// ox), computed in i32. Each output row's partial sum is added to the total separately (a
// two-level f32 sum, to keep long reductions such as conv1's N*55*55 accurate).
// Shapes: dout (N, C_out, OH, OW), x (N, C_in, H, W), dw (C_out, cin_g, KH, KW).
// Bindings: 0 uniform ConvParams, 1 dout (read), 2 x (read), 3 dw (write).
// Dispatch: elementwise grid over count = C_out * cin_g * KH * KW (see relu.wgsl).

// #include lib/conv.wgsl
// #include lib/grid.wgsl

// ceil(a / s) for any sign of a, s > 0.
fn ceil_div(a: i32, s: i32) -> i32 {
    if a > 0 {
        return (a + s - 1) / s;
    }
    return -((-a) / s);
}

// [lo, hi) of the outputs along one axis whose tap k lands inside 0..len.
fn outs_for_tap(k: u32, s: u32, pad: u32, len: u32, outs: u32) -> vec2<u32> {
    let d = i32(pad) - i32(k);
    let lo = clamp(ceil_div(d, i32(s)), 0, i32(outs));
    let hi = clamp(ceil_div(i32(len) + d, i32(s)), lo, i32(outs));
    return vec2<u32>(u32(lo), u32(hi));
}

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.c_out * p.cin_g * p.kh * p.kw { return; }
    let at = tensor_coords(i, p.kw, p.kh, p.cin_g); // (kx, ky, c, o)
    let kx = at.x;
    let ky = at.y;
    let c = at.z;
    let o = at.w;
    let ci = (o / p.cout_g) * p.cin_g + c;
    let ry = outs_for_tap(ky, p.sh, p.pad_top, p.h, p.oh);
    let rx = outs_for_tap(kx, p.sw, p.pad_left, p.w, p.ow);
    var acc = 0.0;
    for (var n = 0u; n < p.n; n++) {
        let dbase = (n * p.c_out + o) * p.oh;
        let xbase = (n * p.c_in + ci) * p.h;
        for (var oy = ry.x; oy < ry.y; oy++) {
            let iy = oy * p.sh + ky - p.pad_top;
            var row = 0.0;
            for (var ox = rx.x; ox < rx.y; ox++) {
                let ix = ox * p.sw + kx - p.pad_left;
                row += dout[(dbase + oy) * p.ow + ox] * x[(xbase + iy) * p.w + ix];
            }
            acc += row;
        }
    }
    dw[i] = acc;
}
