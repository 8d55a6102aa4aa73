// lib/gemm_tile.wgsl: the register-blocked core of the tiled GEMM kernels (conv forward,
// conv input and weight gradients, fully connected). One workgroup of 16 x 16 invocations
// owns a TILE x TILE tile of the output (rows from wid.y * TILE, columns from wid.x * TILE);
// invocation (tx, ty) accumulates rows ty + 16 i and columns tx + 16 j, i, j in 0..4, from
// two TILE_K x TILE tiles the kernel stages in workgroup memory (8 KiB) before each call of
// accumulate_tiles. At the end store_block hands each output element to the kernel's
// `fn store_c(z: u32, m: u32, col: u32, v: f32)` (z = wid.z: the kernel's group, or split
// and group), which adds what the kernel adds (bias, ReLU) and writes it.

// The ids every tiled kernel hands to the core. Its entry point takes them as separate
// builtins and builds a Tile: to Tint's uniformity analysis an entry point's struct that
// holds invocation ids is non-uniform as a whole, and the loops around the barriers run on
// the (uniform) workgroup id.
struct Tile {
    wid: vec3<u32>,
    lid3: vec3<u32>,
    li: u32,
}

// a_tile[k * TILE + row], b_tile[k * TILE + col]
var<workgroup> a_tile: array<f32, TILE * TILE_K>;
var<workgroup> b_tile: array<f32, TILE * TILE_K>;

// The 256 invocations stage a tile's TILE_K x TILE values in 4 rounds; in round r (0..4)
// invocation li takes one of two slot orders:
// - k fastest, (row, k) = ((li + r*WG) / TILE_K, li % TILE_K): consecutive invocations read
//   consecutive k of one row of an operand stored with k contiguous (the weights, x of a
//   fully connected layer); an invocation's k is the same in every round;
// - columns fastest, (k, col) = (li / TILE + 4r, li % TILE): consecutive invocations read
//   consecutive pixels; an invocation's column is the same in every round, so what it
//   decodes from the column is decoded once.
fn k_fast_slot(li: u32, r: u32) -> vec2<u32> {
    let e = li + r * WG;
    return vec2<u32>(e / TILE_K, e % TILE_K);
}

fn col_fast_slot(li: u32, r: u32) -> vec2<u32> {
    return vec2<u32>(li / TILE + 4u * r, li % TILE);
}

fn stage_a(row: u32, k: u32, v: f32) {
    a_tile[k * TILE + row] = v;
}

fn stage_b(k: u32, col: u32, v: f32) {
    b_tile[k * TILE + col] = v;
}

// Rows ty, ty + 16, ty + 32 and ty + 48 of an invocation's 4 x 4 block; Acc() is zero.
struct Acc {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// Adds the product of the staged tiles (TILE_K terms per output) to the block. The barriers:
// every invocation's staging is done before any reads the tiles, and every read is done
// before the next staging overwrites them.
fn accumulate_tiles(acc: ptr<function, Acc>, t: Tile) {
    let tx = t.lid3.x;
    let ty = t.lid3.y;
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
        let a = vec4<f32>(
            a_tile[kk * TILE + ty],
            a_tile[kk * TILE + ty + 16u],
            a_tile[kk * TILE + ty + 32u],
            a_tile[kk * TILE + ty + 48u],
        );
        let b = vec4<f32>(
            b_tile[kk * TILE + tx],
            b_tile[kk * TILE + tx + 16u],
            b_tile[kk * TILE + tx + 32u],
            b_tile[kk * TILE + tx + 48u],
        );
        (*acc).r0 += a.x * b;
        (*acc).r1 += a.y * b;
        (*acc).r2 += a.z * b;
        (*acc).r3 += a.w * b;
    }
    workgroupBarrier();
}

// Row i (0..4) of the block: columns tx, tx + 16, tx + 32, tx + 48.
fn acc_row(acc: Acc, i: u32) -> vec4<f32> {
    switch i {
        case 0u: { return acc.r0; }
        case 1u: { return acc.r1; }
        case 2u: { return acc.r2; }
        default: { return acc.r3; }
    }
}

fn acc_add(a: Acc, b: Acc) -> Acc {
    return Acc(a.r0 + b.r0, a.r1 + b.r1, a.r2 + b.r2, a.r3 + b.r3);
}

// Each element (m, col) of the invocation's block inside the big_m x big_n output, to the
// kernel's store_c.
fn store_block(acc: Acc, t: Tile, big_m: u32, big_n: u32) {
    for (var i = 0u; i < 4u; i++) {
        let m = t.wid.y * TILE + t.lid3.y + 16u * i;
        if m >= big_m {
            continue;
        }
        let row = acc_row(acc, i);
        for (var j = 0u; j < 4u; j++) {
            let col = t.wid.x * TILE + t.lid3.x + 16u * j;
            if col < big_n {
                store_c(t.wid.z, m, col, row[j]);
            }
        }
    }
}
