// maxpool_bwd.wgsl: gradient of max pooling as a gather, using the forward's saved argmax.
//
// One invocation computes one input-gradient element dx[i], i = ((n*C + c)*H + y)*W + x:
//   dx[i] = sum of dout[o] over the outputs o whose window can contain (y, x) and whose
//   argmax[o] == i. Windows overlap (3/2 pooling), so several outputs can route to one input.
//   Candidate rows: oy in [ceil((y + pad_top + 1 - KH) / sh), floor((y + pad_top) / sh)]
//   clipped to [0, OH) (i32 for the lower bound; likewise columns), as cpu::maxpool_backward.
// Bindings: 0 uniform PoolParams, 1 dout (read) (N, C, OH, OW), 2 argmax: array<u32> (read)
// (N, C, OH, OW), 3 dx (write) (N, C, H, W).
// Dispatch: elementwise grid over count = N*C*H*W (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/pool.wgsl
// #include lib/window.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let at = plane_coords(i, p.w, p.h); // (x, y, n*C + c)
    let ry = outs_for_input(at.y + p.pad_top, p.kh, p.sh, p.oh);
    let rx = outs_for_input(at.x + p.pad_left, p.kw, p.sw, p.ow);
    var acc = 0.0;
    for (var oy = ry.x; oy < ry.y; oy++) {
        for (var ox = rx.x; ox < rx.y; ox++) {
            let o = (at.z * p.oh + oy) * p.ow + ox;
            if argmax[o] == i {
                acc += dout[o];
            }
        }
    }
    dx[i] = acc;
}
