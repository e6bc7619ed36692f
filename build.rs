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
    // Every message implements `prost::Name` (`diplog.v1.DiplomaticEvent`), so code that looks
    // a message up in the descriptor pool names it by its type, never by a string.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        // Deterministic map order (answers and their JSON compare equal when their content does).
        .btree_map(".")
        .build_client(true)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
