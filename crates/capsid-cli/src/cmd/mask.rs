//! `capsid mask` (not yet implemented).

/// Arguments of `capsid mask`.
#[derive(clap::Args)]
#[command(after_help = "This subcommand is not implemented yet.")]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("capsid mask is not implemented yet")
}
