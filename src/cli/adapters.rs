//! `alexnet adapters`: the GPU adapters wgpu finds, and which are software.

use crate::error::Result;

pub(super) fn run() -> Result<()> {
    let all = crate::gpu::native_adapters();
    if all.is_empty() {
        println!("no GPU adapter found (install a Vulkan driver; mesa-vulkan-drivers gives the lavapipe software adapter)");
    }
    for a in all {
        let kind = if a.software {
            "software: a CPU emulating a GPU"
        } else {
            "hardware"
        };
        println!(
            "{} ({}, {}, {}) [{kind}]",
            a.name, a.backend, a.device_type, a.driver
        );
    }
    Ok(())
}
