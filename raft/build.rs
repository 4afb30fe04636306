//! Compiles `proto/raft.proto` (the inter-node Raft transport) with protox, a pure-Rust protobuf
//! compiler, so no `protoc` binary is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../proto");
    println!(
        "cargo:rerun-if-changed={}",
        proto_dir.join("raft.proto").display()
    );
    println!("cargo:rerun-if-changed=build.rs");
    let fds = protox::compile(["raft.proto"], [&proto_dir])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
