//! Generates the C header with cbindgen into OUT_DIR (and, with REACTOR_UPDATE_HEADER=1, into
//! include/reactor.h), sets the SONAME, and exposes the generated path to the drift test.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let patch = env::var("CARGO_PKG_VERSION_PATCH").unwrap();

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=REACTOR_UPDATE_HEADER");

    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "freebsd" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libreactor.so.{major}");
    } else if target_os == "macos" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libreactor.{major}.dylib");
    }

    let version_block = format!(
        "#define REACTOR_VERSION_MAJOR {major}\n\
         #define REACTOR_VERSION_MINOR {minor}\n\
         #define REACTOR_VERSION_PATCH {patch}\n\
         #define REACTOR_VERSION_HEX ((REACTOR_VERSION_MAJOR << 16) | (REACTOR_VERSION_MINOR << 8) | REACTOR_VERSION_PATCH)\n\
         /* An OS error as a status: -(10000 + errno). reactor_status_errno() recovers the errno. */\n\
         #define REACTOR_E_OS(e) (-(10000 + (e)))\n"
    );
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    config.after_includes = Some(format!(
        "{}\n{version_block}",
        config.after_includes.unwrap_or_default()
    ));

    let generated = out_dir.join("reactor.h");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write_to_file(&generated);
    println!(
        "cargo:rustc-env=REACTOR_GENERATED_HEADER={}",
        generated.display()
    );

    if env::var("REACTOR_UPDATE_HEADER").as_deref() == Ok("1") {
        std::fs::copy(&generated, crate_dir.join("include/reactor.h"))
            .expect("could not update include/reactor.h");
    }
}
