//! Compiles `proto/whatsapp.proto` with protox (pure Rust) and prost-build, so no `protoc` binary
//! is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/whatsapp.proto");
    let fds = protox::compile(["proto/whatsapp.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
