//! WebSocket bridge: outbound client to an agent platform's bridge.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct WsArgs {}

pub async fn run(_args: WsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ws bridge not implemented yet")
}
