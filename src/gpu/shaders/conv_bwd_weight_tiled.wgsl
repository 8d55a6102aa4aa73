// conv_bwd_weight_tiled.wgsl: gradient of a convolution with respect to its weight, as a
// tiled GEMM over the implicit im2col matrix, split along its long reduction.
//
// Per group g: dW_g[m, k] = sum_j dY_g[m, j] * B[k, j] with
//   M = cout_g, K = cin_g*KH*KW (k = (c*KH + ky)*KW + kx, the weight's flat layout),
//   j = (n*OH + oy)*OW + ox over N*OH*OW (the reduction: 387,200 terms for conv1 at batch
//   128), dY_g[m, j] = dout[n, g*cout_g + m, oy, ox],
//   B[k, j] = x[n, g*cin_g + c, oy*sh + ky - pad_top, ox*sw + kx - pad_left] (0 in padding).
// Split-K: workgroup z = s*groups + g sums only j in [s*cols_per_split, (s+1)*cols_per_split)
// and writes part[s*C_out*K + (g*cout_g + m)*K + k]; with splits > 1 the host then adds the
// splits (sum_splits.wgsl); with splits = 1 `part` is dw itself. Within a split each
// invocation keeps a running total and a chunk sum that it folds into the total every 1024
// terms (a two-level f32 sum, as conv_bwd_weight.wgsl does per output row).
// Shapes: dout (N, C_out, OH, OW), x (N, C_in, H, W), part (splits, C_out, cin_g, KH, KW).
// Bindings: 0 uniform ConvParams (conv_naive.wgsl's fields up to cout_g, then groups, splits,
// cols_per_split), 1 dout (read), 2 x (read), 3 part (write).
//
// One workgroup computes a 64 x 64 tile of dW_g (64 output channels x 64 taps) with 16 x 16
// invocations; invocation (tx, ty) owns rows ty + 16*i and columns tx + 16*jj, i, jj in 0..4.
// j is walked in steps of 16 through two 16 x 64 tiles in workgroup memory (8 KiB).
// Dispatch: (ceil(K / 64), ceil(M / 64), groups * splits); each <= 65535 (the host checks).

// #include lib/conv.wgsl
// #include lib/gemm_tile.wgsl

// Steps of TJ terms per chunk of the two-level sum (64 * 16 = 1024 terms).
const CHUNK_STEPS: u32 = 64u;

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid3: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = Tile(wid, lid3, li);
    let g = wid.z % p.groups;
    let s = wid.z / p.groups;
    let m0 = wid.y * TILE;
    let k0 = wid.x * TILE;
    let big_m = p.cout_g;
    let khw = p.kh * p.kw;
    let big_k = p.cin_g * khw;
    let ohw = p.oh * p.ow;
    let cols = p.n * ohw;
    let j_begin = s * p.cols_per_split;
    let j_end = min(cols, j_begin + p.cols_per_split);

    // The tap this invocation gathers B values for (fixed for the whole reduction).
    let bk = li % TILE;
    let my_k = k0 + bk;
    let k_ok = my_k < big_k;
    let btap = tap_coords(my_k); // (c, ky, kx)
    let x_chan = g * p.cin_g + btap.x;
    // The dY row offset inside a tile this invocation loads is fixed too: aj = li % 16.
    let aj = li % TILE_K;

    var acc = Acc();
    var tot = Acc();

    var step = 0u;
    for (var j0 = j_begin; j0 < j_end; j0 += TILE_K) {
        // A tile: 16 j x 64 m; consecutive invocations read consecutive pixels of one plane.
        let ja = j0 + aj;
        let ja_ok = ja < j_end;
        let an = ja / ohw;
        let apix = ja - an * ohw;
        for (var r = 0u; r < 4u; r++) {
            let am = k_fast_slot(li, r).x;
            let m = m0 + am;
            var v = 0.0;
            if ja_ok && m < big_m {
                v = dout[(an * p.c_out + g * p.cout_g + m) * ohw + apix];
            }
            stage_a(am, aj, v);
        }
        // B tile: 16 j x 64 k; each invocation loads tap bk for rows bj = li / 64 + 4r.
        for (var r = 0u; r < 4u; r++) {
            let bj = col_fast_slot(li, r).x;
            let j = j0 + bj;
            var v = 0.0;
            if k_ok && j < j_end {
                let n = j / ohw;
                let pix = j - n * ohw;
                let oy = pix / p.ow;
                let ox = pix - oy * p.ow;
                let iy = i32(oy * p.sh + btap.y) - i32(p.pad_top);
                let ix = i32(ox * p.sw + btap.z) - i32(p.pad_left);
                if iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w) {
                    v = x[((n * p.c_in + x_chan) * p.h + u32(iy)) * p.w + u32(ix)];
                }
            }
            stage_b(bj, bk, v);
        }
        accumulate_tiles(&acc, t);
        step += 1u;
        if step == CHUNK_STEPS {
            tot = acc_add(tot, acc);
            acc = Acc();
            step = 0u;
        }
    }
    tot = acc_add(tot, acc);

    store_block(tot, t, big_m, big_k);
}

// z = s*groups + g: split s of group g.
fn store_c(z: u32, m: u32, k: u32, acc: f32) {
    let g = z % p.groups;
    let s = z / p.groups;
    let big_k = p.cin_g * p.kh * p.kw;
    part[s * p.c_out * big_k + (g * p.cout_g + m) * big_k + k] = acc;
}
