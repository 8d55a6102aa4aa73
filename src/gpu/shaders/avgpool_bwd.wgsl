// avgpool_bwd.wgsl: gradient of adaptive average pooling as a gather.
//
// One invocation computes one input-gradient element dx[n, c, y, x]:
//   dx = sum over the outputs (oy, ox) whose region R contains (y, x) of dout / |R|,
//   R(oy, ox) = rows floor(oy*H/OH) .. ceil((oy+1)*H/OH) x the same for columns (regions
//   overlap when H is not a multiple of OH), summed in row-major output order in f32 as
//   cpu::adaptive_avgpool_backward.
// Bindings: 0 uniform AvgPoolParams { count, h, w, oh, ow }, 1 dout (read) (N, C, OH, OW),
// 2 dx (write) (N, C, H, W).
// Dispatch: elementwise grid over count = N*C*H*W (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/pool.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let at = plane_coords(i, p.w, p.h); // (x, y, n*C + c)
    var acc = 0.0;
    for (var oy = 0u; oy < p.oh; oy++) {
        let ry = adaptive_range(oy, p.h, p.oh);
        if at.y < ry.x || at.y >= ry.y {
            continue;
        }
        for (var ox = 0u; ox < p.ow; ox++) {
            let rx = adaptive_range(ox, p.w, p.ow);
            if at.x < rx.x || at.x >= rx.y {
                continue;
            }
            acc += dout[(at.z * p.oh + oy) * p.ow + ox] / f32((ry.y - ry.x) * (rx.y - rx.x));
        }
    }
    dx[i] = acc;
}
