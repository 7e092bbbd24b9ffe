//! HTTP bridge: loopback inject/SSE endpoint found through a discovery file.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct HttpArgs {}

pub async fn run(_args: HttpArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("http bridge not implemented yet")
}
