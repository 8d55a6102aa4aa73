//! Every compute kernel in `src/gpu/shaders/` parses and validates with naga (the shader
//! compiler inside wgpu), with no GPU, as the pipeline compiles it (composed with the shared
//! constants and its `lib/` pieces): the directory is listed at run time, so a new kernel is
//! covered the moment its file exists. Also checks that the kernel registry
//! (`gpu::Kernel::ALL`) and the directory name the same files, that every file opens with
//! the header comment the project asks for (what one invocation computes, bindings,
//! dispatch), and that the uniform struct each kernel binds at 0 has exactly the fields,
//! offsets, types and size of its host struct in `gpu::params`, and that its storage
//! buffers are what `Kernel::buffers` declares (the order the host binds them in).
#![cfg(not(target_arch = "wasm32"))]

use alexnet::gpu::kernels::{compose, LIB};
use alexnet::gpu::params::{Layout, Scalar};
use alexnet::gpu::Kernel;
use std::path::PathBuf;

fn shader_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/gpu/shaders")
}

fn wgsl_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    files.sort();
    files
}

fn parse(name: &str, src: &str) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(src)
        .map_err(|e| format!("{name}: parse error:\n{}", e.emit_to_string(src)))?;
    let mut v = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    );
    v.validate(&module)
        .map_err(|e| format!("{name}: validation error:\n{}", e.emit_to_string(src)))?;
    Ok(module)
}

#[test]
fn every_shader_parses_and_validates() {
    let files = wgsl_files(&shader_dir());
    assert!(!files.is_empty(), "no .wgsl files found");
    let mut failures = Vec::new();
    for path in &files {
        let own = std::fs::read_to_string(path).expect("read shader");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(kernel) = Kernel::ALL.iter().find(|k| k.file() == name) else {
            failures.push(format!("{name}: not in gpu::Kernel::ALL"));
            continue;
        };
        let src = match compose(&own, *kernel) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let module = match parse(&name, &src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        if !module
            .entry_points
            .iter()
            .any(|ep| ep.name == "main" && ep.stage == naga::ShaderStage::Compute)
        {
            failures.push(format!("{name}: no @compute entry point named main"));
        }
        // Chrome's Tint treats an entry point's struct of builtins as non-uniform as a whole
        // (it holds the invocation ids), so code before a barrier that reads the workgroup
        // id through it is refused there, though naga accepts it.
        if src.contains("workgroupBarrier") {
            for ep in &module.entry_points {
                for arg in &ep.function.arguments {
                    if matches!(module.types[arg.ty].inner, naga::TypeInner::Struct { .. }) {
                        failures.push(format!(
                            "{name}: has barriers, so its entry point must take its builtins \
                             one by one, not as a struct ({:?})",
                            arg.name
                        ));
                    }
                }
            }
        }
        let header: String = own.lines().take_while(|l| l.starts_with("//")).collect();
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
    let mut on_disk: Vec<String> = wgsl_files(&shader_dir())
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
            k.own_source(),
            std::fs::read_to_string(shader_dir().join(k.file())).unwrap(),
            "{k:?}: include_str! source differs from the file"
        );
    }
    let mut lib_on_disk: Vec<String> = wgsl_files(&shader_dir().join("lib"))
        .iter()
        .map(|p| format!("lib/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    let mut lib: Vec<String> = LIB.iter().map(|(n, _)| n.to_string()).collect();
    lib_on_disk.sort();
    lib.sort();
    assert_eq!(
        lib, lib_on_disk,
        "gpu::kernels::LIB and shaders/lib/ differ"
    );
    for (name, text) in LIB {
        assert_eq!(
            text,
            std::fs::read_to_string(shader_dir().join(name)).unwrap(),
            "{name}: include_str! source differs from the file"
        );
        assert!(
            Kernel::ALL
                .iter()
                .any(|k| k.own_source().contains(&format!("// #include {name}"))),
            "{name} is included by no kernel"
        );
    }
}

/// A uniform struct as `(name, [(field, offset, scalar)], size)`, comparable across naga
/// and `gpu::params`.
type Flat = (String, Vec<(String, u32, Scalar)>, u32);

/// The uniform struct at group 0, binding 0.
fn uniform_layout(module: &naga::Module) -> Option<Flat> {
    let var = module.global_variables.iter().find_map(|(_, v)| {
        (v.space == naga::AddressSpace::Uniform
            && v.binding
                .as_ref()
                .is_some_and(|b| b.group == 0 && b.binding == 0))
        .then_some(v)
    })?;
    let ty = &module.types[var.ty];
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        return None;
    };
    let fields = members
        .iter()
        .map(|m| {
            let scalar = match module.types[m.ty].inner {
                naga::TypeInner::Scalar(naga::Scalar {
                    kind: naga::ScalarKind::Uint,
                    width: 4,
                }) => Scalar::U32,
                naga::TypeInner::Scalar(naga::Scalar {
                    kind: naga::ScalarKind::Float,
                    width: 4,
                }) => Scalar::F32,
                ref other => panic!("uniform field {:?} has type {other:?}", m.name),
            };
            (m.name.clone().unwrap_or_default(), m.offset, scalar)
        })
        .collect();
    Some((ty.name.clone().unwrap_or_default(), fields, *span))
}

fn host_layout(l: &Layout) -> Flat {
    (
        l.name.to_string(),
        l.fields
            .iter()
            .map(|f| (f.name.to_string(), f.offset as u32, f.ty))
            .collect(),
        l.size as u32,
    )
}

#[test]
fn host_parameter_structs_match_the_shaders() {
    let mut failures = Vec::new();
    for k in Kernel::ALL {
        let src = k.source().expect("compose");
        let module = parse(k.file(), &src).unwrap_or_else(|e| panic!("{e}"));
        let Some(shader) = uniform_layout(&module) else {
            failures.push(format!("{}: no uniform struct at binding 0", k.file()));
            continue;
        };
        let host = host_layout(&k.params());
        if shader != host {
            failures.push(format!(
                "{}: the shader's {shader:?}\n   differs from the host's {host:?}",
                k.file()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_kernel_binds_what_the_registry_declares() {
    for k in Kernel::ALL {
        let module =
            parse(k.file(), &k.source().expect("compose")).unwrap_or_else(|e| panic!("{e}"));
        let mut bound: Vec<(u32, String)> = module
            .global_variables
            .iter()
            .filter_map(|(_, v)| {
                let b = v.binding.as_ref()?;
                matches!(v.space, naga::AddressSpace::Storage { .. })
                    .then(|| (b.binding, v.name.clone().unwrap_or_default()))
            })
            .collect();
        bound.sort();
        let want: Vec<(u32, String)> = k
            .buffers()
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u32 + 1, b.name.to_string()))
            .collect();
        assert_eq!(bound, want, "{}", k.file());
    }
}

#[test]
fn a_missing_piece_is_an_error() {
    let err = compose("// #include lib/nothing.wgsl\n", Kernel::Relu).unwrap_err();
    assert!(
        matches!(err, alexnet::Error::Gpu(ref m) if m.contains("lib/nothing.wgsl")),
        "{err:?}"
    );
}
