//! Compiles `proto/` with protox (pure Rust, no system protoc) and writes the descriptor set
//! that the reflection service serves.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(
        [
            "proto/diplog/v1/log.proto",
            "proto/diplog/v1/diplomacy.proto",
            "proto/diplog/v1/projections.proto",
            "proto/diplog/v1/audit.proto",
            "proto/diplog/v1/admin.proto",
        ],
        ["proto"],
    )?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("diplog_descriptor.bin"),
        protox::prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Deterministic map order (answers and their JSON compare equal when their content does).
        .btree_map(".")
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
