fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("interchain.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    prost_build::compile_protos(&[file], &[root])?;
    Ok(())
}
