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
    let at = plane_coords(i, p.ow, p.oh); // (ox, oy, n*C + c)
    let ry = window_range(at.y, p.sh, p.pad_top, p.kh, p.h);
    let rx = window_range(at.x, p.sw, p.pad_left, p.kw, p.w);
    var best_i = (at.z * p.h + ry.x) * p.w + rx.x;
    var best = x[best_i];
    for (var iy = ry.x; iy < ry.y; iy++) {
        for (var ix = rx.x; ix < rx.y; ix++) {
            let j = (at.z * p.h + iy) * p.w + ix;
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
