//! Generates bindings from the installed DPDK (pkg-config libdpdk >= 22.11)
//! and compiles C wrappers for its static inline functions (rx/tx burst,
//! mbuf alloc/free ...), which Rust cannot call directly.
//! Needs: libdpdk-dev, libclang-dev, pkg-config.

use std::{path::PathBuf, process::Command};

fn main() {
    for f in ["wrapper.h", "shim.c", "build.rs"] {
        println!("cargo:rerun-if-changed={f}");
    }
    pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .expect("libdpdk not found: apt-get install libdpdk-dev pkg-config libclang-dev");
    // The pkg-config crate drops -march/-include, which DPDK's headers need
    // (always_inline SSE helpers): take the flags verbatim.
    let out = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config");
    let cflags: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8 flags")
        .split_whitespace()
        .map(String::from)
        .collect();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let wrappers = out_dir.join("dpdk_static_wrappers");
    bindgen::Builder::default()
        .header(manifest.join("wrapper.h").to_str().unwrap())
        .clang_args(&cflags)
        .allowlist_function("rte_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        .opaque_type("rte_gtp_psc_.*")
        .derive_default(true)
        // DPDK's doc comments hold C examples that rustdoc would run as tests.
        .generate_comments(false)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .generate()
        .expect("bindgen")
        .write_to_file(out_dir.join("bindings.rs"))
        .unwrap();
    let mut cc = cc::Build::new();
    cc.file(wrappers.with_extension("c"))
        .file(manifest.join("shim.c"))
        .include(&manifest)
        .opt_level(3)
        .flag("-Wno-deprecated-declarations")
        .flag("-Wno-duplicate-decl-specifier");
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("dpdk_static_wrappers");
}
