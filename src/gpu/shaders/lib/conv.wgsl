// lib/conv.wgsl: the uniform parameters of every convolution kernel (gpu::params::ConvParams).
//
// Shapes: x (N, C_in, H, W), weight (C_out, cin_g, KH, KW), out (N, C_out, OH, OW), with
// cin_g = C_in / groups and cout_g = C_out / groups. The forward writes output channels
// co_base + ... and applies ReLU when relu != 0; the tiled weight gradient splits its
// N*OH*OW reduction into `splits` runs of `cols_per_split` columns.

struct ConvParams {
    n: u32,
    c_in: u32,
    h: u32,
    w: u32,
    c_out: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    pad_top: u32,
    pad_left: u32,
    cin_g: u32,
    cout_g: u32,
    groups: u32,
    co_base: u32,
    relu: u32,
    splits: u32,
    cols_per_split: u32,
}

// (c, ky, kx) of flat tap k = (c*KH + ky)*KW + kx: the weight's own layout, and the K index
// of the implicit GEMMs (c is an input channel, or for the input gradient an output channel,
// of the group).
fn tap_coords(k: u32) -> vec3<u32> {
    let khw = p.kh * p.kw;
    let c = k / khw;
    let kr = k - c * khw;
    let ky = kr / p.kw;
    return vec3<u32>(c, ky, kr - ky * p.kw);
}
