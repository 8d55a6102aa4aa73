// lib/gemm_tile.wgsl: the register-blocked core of the tiled GEMM kernels (conv forward,
// conv input and weight gradients, fully connected). One workgroup of 16 x 16 invocations
// owns a TILE x TILE tile of the output; invocation (tx, ty) accumulates rows ty + 16 i and
// columns tx + 16 j, i, j in 0..4, from two TILE_K x TILE tiles the kernel stages in
// workgroup memory (8 KiB) before each call of accumulate_tiles.

// a_tile[k * TILE + row], b_tile[k * TILE + col]
var<workgroup> a_tile: array<f32, TILE * TILE_K>;
var<workgroup> b_tile: array<f32, TILE * TILE_K>;

// Rows ty, ty + 16, ty + 32 and ty + 48 of an invocation's 4 x 4 block; Acc() is zero.
struct Acc {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// Adds the product of the staged tiles (TILE_K terms per output) to the block.
fn accumulate_tiles(acc: ptr<function, Acc>, tx: u32, ty: u32) {
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
