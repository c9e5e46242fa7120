//! Compiles the shared schemas in `proto/` (the Haskell examples use the
//! same files) with a vendored `protoc`, so no system install is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../../proto";
    let files = [
        format!("{dir}/greeter.proto"),
        format!("{dir}/counter.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    prost_build::Config::new()
        .protoc_executable(protoc_bin_vendored::protoc_bin_path()?)
        .compile_protos(&files, &[dir])?;
    Ok(())
}
