// conv_tiled.wgsl: 2-D convolution as an implicit GEMM with workgroup-memory tiles.
//
// Per group g (the GEMM's batch index, wid.z): C[m, col] = sum_k A[m, k] * B[k, col] with
//   M = cout_g (output channels of the group), N = n*OH*OW (col = (n*OH + oy)*OW + ox),
//   K = cin_g*KH*KW (k = (c*KH + ky)*KW + kx, the weight's own flat layout),
//   A[m, k] = w[(g*cout_g + m)*K + k],
//   B[k, col] = x[n, g*cin_g + c, oy*sh + ky - pad_top, ox*sw + kx - pad_left] (0 in padding;
//   the image is never materialised: B is gathered straight into workgroup memory).
// out[n, co_base + g*cout_g + m, oy, ox] = C[m, col] + bias[...], optional ReLU.
// Bindings: the same Params and buffers as conv_naive.wgsl (which documents the shapes):
// 0 uniform ConvParams, 1 x (read), 2 w (read), 3 bias (read), 4 out (write).
//
// One workgroup computes a 64 x 64 tile of C (64 channels x 64 output pixels) with 16 x 16
// invocations; invocation (tx, ty) owns rows ty + 16*i and columns tx + 16*j, i, j in 0..4.
// K is walked in steps of 16 through two 16 x 64 tiles in workgroup memory (8 KiB).
// Dispatch: (ceil(N / 64), ceil(M / 64), groups); each must be <= 65535 (the host checks).

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
    let m0 = wid.y * TILE;
    let n0 = wid.x * TILE;
    let big_m = p.cout_g;
    let ohw = p.oh * p.ow;
    let big_n = p.n * ohw;
    let khw = p.kh * p.kw;
    let big_k = p.cin_g * khw;
    let w_base = g * p.cout_g * big_k;

    // The output pixel this invocation gathers B values for (fixed for the whole K loop).
    let bn = li % TILE;
    let my_col = n0 + bn;
    let col_ok = my_col < big_n;
    let my_n = my_col / ohw;
    let my_pix = my_col % ohw;
    let iy0 = i32((my_pix / p.ow) * p.sh) - i32(p.pad_top);
    let ix0 = i32((my_pix % p.ow) * p.sw) - i32(p.pad_left);
    let x_base = (my_n * p.c_in + g * p.cin_g) * p.h * p.w;

    var acc = Acc();

    for (var k0 = 0u; k0 < big_k; k0 += TILE_K) {
        // A tile: 64 rows x 16 k; consecutive invocations read consecutive k of one row.
        for (var r = 0u; r < 4u; r++) {
            let slot = k_fast_slot(li, r); // (am, ak)
            let m = m0 + slot.x;
            let k = k0 + slot.y;
            var v = 0.0;
            if m < big_m && k < big_k {
                v = wt[w_base + m * big_k + k];
            }
            stage_a(slot.x, slot.y, v);
        }
        // B tile: 16 k x 64 columns; consecutive invocations read consecutive pixels. Each
        // invocation always loads column bn = li % 64 (256 is a multiple of 64), whose pixel
        // was decoded once above; rows bk = li / 64 + 4r.
        for (var r = 0u; r < 4u; r++) {
            let bk = col_fast_slot(li, r).x;
            let k = k0 + bk;
            var v = 0.0;
            if col_ok && k < big_k {
                let tap = tap_coords(k); // (c, ky, kx)
                let iy = iy0 + i32(tap.y);
                let ix = ix0 + i32(tap.z);
                if iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w) {
                    v = x[x_base + (tap.x * p.h + u32(iy)) * p.w + u32(ix)];
                }
            }
            stage_b(bk, bn, v);
        }
        accumulate_tiles(&acc, t);
    }

    store_block(acc, t, big_m, big_n);
}

fn store_c(g: u32, m: u32, col: u32, acc: f32) {
    let co = p.co_base + g * p.cout_g + m;
    var v = acc + bias[co];
    if p.relu != 0u {
        v = max(v, 0.0);
    }
    let ohw = p.oh * p.ow;
    let n = col / ohw;
    let pix = col % ohw;
    out[(n * p.c_out + co) * ohw + pix] = v;
}
