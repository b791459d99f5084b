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
    println!("cargo:rerun-if-env-changed=LIBKQUEUE_PREFIX");
    // Platform groups for the backends, named once here instead of in every `cfg`:
    // `reactor_kqueue`: the kqueue backend is built (the BSDs and macOS, or Linux with libkqueue);
    // `reactor_kqueue_user`: the kernel has EVFILT_USER (the kqueue waker uses it).
    println!("cargo::rustc-check-cfg=cfg(reactor_kqueue)");
    println!("cargo::rustc-check-cfg=cfg(reactor_kqueue_user)");
    let bsd_kernel_user = matches!(
        target_os.as_str(),
        "macos" | "ios" | "freebsd" | "netbsd" | "dragonfly"
    );
    let libkqueue = target_os == "linux" && env::var_os("CARGO_FEATURE_LIBKQUEUE").is_some();
    if bsd_kernel_user || target_os == "openbsd" || libkqueue {
        println!("cargo:rustc-cfg=reactor_kqueue");
    }
    if bsd_kernel_user {
        println!("cargo:rustc-cfg=reactor_kqueue_user");
    }
    if target_os == "linux" && env::var_os("CARGO_FEATURE_LIBKQUEUE").is_some() {
        // The libkqueue feature: link the emulation (and find it at run time without installing it).
        let prefix = env::var("LIBKQUEUE_PREFIX")
            .expect("the libkqueue feature needs LIBKQUEUE_PREFIX (see scripts/test.sh)");
        println!("cargo:rustc-link-search=native={prefix}/lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{prefix}/lib");
    }
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
    let mut header = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut header);
    let header = String::from_utf8(header).expect("the header is UTF-8");
    std::fs::write(&generated, api_struct_tags(&header)).expect("could not write the header");
    println!(
        "cargo:rustc-env=REACTOR_GENERATED_HEADER={}",
        generated.display()
    );

    if env::var("REACTOR_UPDATE_HEADER").as_deref() == Ok("1") {
        std::fs::copy(&generated, crate_dir.join("include/reactor.h"))
            .expect("could not update include/reactor.h");
    }
}

/// API.md names each struct's tag without the `_t` of its typedef (`typedef struct reactor reactor_t;`,
/// `typedef struct reactor_options { ... } reactor_options_t;`), so that hosts may write either.
/// cbindgen gives tag and typedef the same name; this renames every `struct reactor..._t` tag.
fn api_struct_tags(header: &str) -> String {
    const KEYWORD: &str = "struct ";
    let mut out = String::with_capacity(header.len());
    let mut rest = header;
    while let Some(at) = rest.find(KEYWORD) {
        let (before, from_keyword) = rest.split_at(at + KEYWORD.len());
        out.push_str(before);
        let name_len = from_keyword
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(from_keyword.len());
        let name = &from_keyword[..name_len];
        let keyword_starts_word = at == 0
            || !rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        match name.strip_suffix("_t") {
            Some(tag)
                if keyword_starts_word && (tag == "reactor" || tag.starts_with("reactor_")) =>
            {
                out.push_str(tag)
            }
            _ => out.push_str(name),
        }
        rest = &from_keyword[name_len..];
    }
    out.push_str(rest);
    out
}
