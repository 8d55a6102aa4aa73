// avgpool.wgsl: adaptive average pooling (PyTorch's AdaptiveAvgPool2d).
//
// One invocation computes one output (n, c, oy, ox): the mean of input rows
// floor(oy*H/OH) .. ceil((oy+1)*H/OH) and columns floor(ox*W/OW) .. ceil((ox+1)*W/OW)
// (shape::adaptive_range's definition), summed in row-major order in f32 like the CPU.
// Bindings: 0 uniform AvgPoolParams { count, h, w, oh, ow }, 1 x (read) (N, C, H, W),
// 2 out (write) (N, C, OH, OW).
// Dispatch: elementwise grid over count = N*C*OH*OW (see relu.wgsl).

// #include lib/grid.wgsl
// #include lib/pool.wgsl

@compute @workgroup_size(WG)
fn main(grid: Grid) {
    let i = flat_index(grid);
    if i >= p.count { return; }
    let at = plane_coords(i, p.ow, p.oh); // (ox, oy, n*C + c)
    let ry = adaptive_range(at.y, p.h, p.oh);
    let rx = adaptive_range(at.x, p.w, p.ow);
    var sum = 0.0;
    for (var iy = ry.x; iy < ry.y; iy++) {
        for (var ix = rx.x; ix < rx.y; ix++) {
            sum += x[(at.z * p.h + iy) * p.w + ix];
        }
    }
    out[i] = sum / f32((ry.y - ry.x) * (rx.y - rx.x));
}
