// maxpool.wgsl: max pooling with padding (padding acts as -inf) and the argmax saved.
//
// One invocation computes one output (n, c, oy, ox): the max over input rows
// oy*sh - pad_top .. + KH and columns ox*sw - pad_left .. + KW clipped to the input (i32
// coordinates), and argmax = the flat input index ((n*C + c)*H + iy)*W + ix (u32) of the
// first maximum in row-major order (a later element wins only if strictly greater), as
// src/cpu/pool.rs. No window is empty: the host's shape rules guarantee it.
// Bindings: 0 uniform PoolParams, 1 x (read) (N, C, H, W), 2 out (write) (N, C, OH, OW),
// 3 argmax: array<u32> (write) (N, C, OH, OW), saved for backward.
// Dispatch: elementwise grid over count = N*C*OH*OW (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/pool.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let at = plane_coords(i, p.ow, p.oh);
    let ox = at.x;
    let oy = at.y;
    let nc = at.z;
    let y_start = i32(oy * p.sh) - i32(p.pad_top);
    let x_start = i32(ox * p.sw) - i32(p.pad_left);
    let y0 = u32(max(y_start, 0));
    let y1 = u32(min(y_start + i32(p.kh), i32(p.h)));
    let x0 = u32(max(x_start, 0));
    let x1 = u32(min(x_start + i32(p.kw), i32(p.w)));
    var best_i = (nc * p.h + y0) * p.w + x0;
    var best = x[best_i];
    for (var iy = y0; iy < y1; iy++) {
        for (var ix = x0; ix < x1; ix++) {
            let j = (nc * p.h + iy) * p.w + ix;
            let v = x[j];
            if v > best {
                best = v;
                best_i = j;
            }
        }
    }
    out[i] = best;
    argmax[i] = best_i;
}
