//! Every compute kernel in `src/gpu/shaders/` parses and validates with naga (the shader
//! compiler inside wgpu), with no GPU: the directory is listed at run time, so a new kernel
//! is covered the moment its file exists. Also checks that the kernel registry
//! (`gpu::Kernel::ALL`) and the directory name the same files, and that every file opens with
//! the header comment the project asks for (what one invocation computes, bindings, dispatch).
#![cfg(not(target_arch = "wasm32"))]

use alexnet::gpu::Kernel;
use std::path::PathBuf;

fn shader_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/gpu/shaders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shader_parses_and_validates() {
    let files = shader_files();
    assert!(!files.is_empty(), "no .wgsl files found");
    let mut failures = Vec::new();
    for path in &files {
        let src = std::fs::read_to_string(path).expect("read shader");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let module = match naga::front::wgsl::parse_str(&src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{name}: parse error:\n{}", e.emit_to_string(&src)));
                continue;
            }
        };
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        );
        if let Err(e) = v.validate(&module) {
            failures.push(format!(
                "{name}: validation error:\n{}",
                e.emit_to_string(&src)
            ));
            continue;
        }
        if !module
            .entry_points
            .iter()
            .any(|ep| ep.name == "main" && ep.stage == naga::ShaderStage::Compute)
        {
            failures.push(format!("{name}: no @compute entry point named main"));
        }
        let header: String = src.lines().take_while(|l| l.starts_with("//")).collect();
        for word in ["invocation", "Bindings", "Dispatch"] {
            if !header.contains(word) {
                failures.push(format!("{name}: header comment does not mention {word:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn registry_and_directory_agree() {
    let mut on_disk: Vec<String> = shader_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    let mut registered: Vec<String> = Kernel::ALL.iter().map(|k| k.file().to_string()).collect();
    on_disk.sort();
    registered.sort();
    assert_eq!(
        registered, on_disk,
        "gpu::Kernel::ALL and src/gpu/shaders/*.wgsl must list the same kernels"
    );
    for k in Kernel::ALL {
        assert_eq!(
            k.source(),
            std::fs::read_to_string(
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("src/gpu/shaders")
                    .join(k.file())
            )
            .unwrap(),
            "{k:?}: include_str! source differs from the file"
        );
    }
}
