// conv_bwd_data_tiled.wgsl: gradient of a convolution with respect to its input, as an
// implicit GEMM with workgroup-memory tiles (the transposed convolution, gathered: no
// atomics, no col2im buffer).
//
// Per group g: dX_g[c, col] = sum_k A[c, k] * B[k, col] with
//   M = cin_g (rows c), N = n*H*W (col = (n*H + y)*W + x), K = cout_g*KH*KW
//   (k = (m*KH + ky)*KW + kx),
//   A[c, k] = w[g*cout_g + m, c, ky, kx],
//   B[k, col] = dout[n, g*cout_g + m, oy, ox] where y + pad_top - ky = oy*sh and
//   x + pad_left - kx = ox*sw with 0 <= oy < OH, 0 <= ox < OW; 0 otherwise (a tap no
//   output reads: off the grid, or between strides).
// dx[n, g*cin_g + c, y, x] = dX_g[c, col] (written, not accumulated).
// Shapes: dout (N, C_out, OH, OW), w (C_out, cin_g, KH, KW), dx (N, C_in, H, W).
// Bindings: 0 uniform ConvParams (conv_naive.wgsl's fields up to cout_g), 1 dout (read), 2 w
// (read), 3 dx (write).
//
// One workgroup computes a 64 x 64 tile (64 input channels x 64 input pixels) with 16 x 16
// invocations; invocation (tx, ty) owns rows ty + 16*i and columns tx + 16*j, i, j in 0..4.
// K is walked in steps of 16 through two 16 x 64 tiles in workgroup memory (8 KiB).
// With stride s only 1/s^2 of the taps are live, so planners use it for stride 1 only
// (every AlexNet conv but conv1, the first layer, whose input gradient is never computed).
// Dispatch: (ceil(N / 64), ceil(M / 64), groups); each <= 65535 (the host checks).

// #include lib/conv.wgsl
// #include lib/gemm_tile.wgsl

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = Tile(wid, lid3, li);
    let g = wid.z;
    let c0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let big_m = p.cin_g;
    let hw = p.h * p.w;
    let big_n = p.n * hw;
    let khw = p.kh * p.kw;
    let big_k = p.cout_g * khw;
    let ohw = p.oh * p.ow;
    let unit_stride = select(0u, 1u, p.sh == 1u && p.sw == 1u);

    // The input pixel this invocation gathers B values for (fixed for the whole K loop).
    let bn = li % TILE;
    let my_col = n0 + bn;
    let col_ok = my_col < big_n;
    let my_n = my_col / hw;
    let my_pix = my_col - my_n * hw;
    let ty0 = i32(my_pix / p.w) + i32(p.pad_top);
    let tx0 = i32(my_pix % p.w) + i32(p.pad_left);
    let dout_base = (my_n * p.c_out + g * p.cout_g) * ohw;
    // The tap column of A this invocation loads is fixed too: ak = li % 16.
    let ak = li % TILE_K;

    var acc = Acc();

    for (var k0 = 0u; k0 < big_k; k0 += TILE_K) {
        // A tile: 64 channels x 16 taps of the group's weights.
        let ka = k0 + ak;
        let am_ = ka / khw; // output channel within the group
        let akr = ka - am_ * khw;
        for (var r = 0u; r < 4u; r++) {
            let ac = k_fast_slot(li, r).x;
            let c = c0 + ac;
            var v = 0.0;
            if c < big_m && ka < big_k {
                v = wt[((g * p.cout_g + am_) * p.cin_g + c) * khw + akr];
            }
            stage_a(ac, ak, v);
        }
        // B tile: 16 taps x 64 pixels; rows bk = li / 64 + 4r.
        for (var r = 0u; r < 4u; r++) {
            let bk = col_fast_slot(li, r).x;
            let k = k0 + bk;
            var v = 0.0;
            if col_ok && k < big_k {
                let tap = tap_coords(k); // (m, ky, kx)
                let sy = ty0 - i32(tap.y);
                let sx = tx0 - i32(tap.z);
                if sy >= 0 && sx >= 0 {
                    var oy = u32(sy);
                    var ox = u32(sx);
                    var on_grid = true;
                    // the divisions only where a stride needs them (uniform branch)
                    if unit_stride == 0u {
                        oy = oy / p.sh;
                        ox = ox / p.sw;
                        on_grid = oy * p.sh == u32(sy) && ox * p.sw == u32(sx);
                    }
                    if on_grid && oy < p.oh && ox < p.ow {
                        v = dout[dout_base + tap.x * ohw + oy * p.ow + ox];
                    }
                }
            }
            stage_b(bk, bn, v);
        }
        accumulate_tiles(&acc, t);
    }

    store_block(acc, t, big_m, big_n);
}

fn store_c(g: u32, c: u32, col: u32, acc: f32) {
    let hw = p.h * p.w;
    let n = col / hw;
    let pix = col - n * hw;
    dx[(n * p.c_in + g * p.cin_g + c) * hw + pix] = acc;
}
