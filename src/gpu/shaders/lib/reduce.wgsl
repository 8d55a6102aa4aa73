// lib/reduce.wgsl: the tree reduction of one value per invocation across a workgroup of WG
// invocations, in workgroup memory (bias_bwd, linear_gemv, the softmax row).
//
// Invocation lid adds (or takes the max of) red[lid + s] into red[lid] for s = WG/2, WG/4,
// ..., 1, so the order of the f32 operations does not depend on the adapter. Every
// invocation of the workgroup must call it (it has barriers) and gets the result.

var<workgroup> red: array<f32, WG>;

const REDUCE_SUM: u32 = 0u;
const REDUCE_MAX: u32 = 1u;

fn reduce_op(op: u32, a: f32, b: f32) -> f32 {
    if op == REDUCE_MAX {
        return max(a, b);
    }
    return a + b;
}

// Ends with a barrier, so the caller may reduce again straight away.
fn workgroup_reduce(op: u32, v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            red[lid] = reduce_op(op, red[lid], red[lid + s]);
        }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

fn workgroup_sum(v: f32, lid: u32) -> f32 {
    return workgroup_reduce(REDUCE_SUM, v, lid);
}

fn workgroup_max(v: f32, lid: u32) -> f32 {
    return workgroup_reduce(REDUCE_MAX, v, lid);
}
