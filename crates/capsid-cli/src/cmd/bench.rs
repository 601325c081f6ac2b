//! `capsid bench` (not yet implemented).

/// Arguments of `capsid bench`.
#[derive(clap::Args)]
#[command(after_help = "This subcommand is not implemented yet.")]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("capsid bench is not implemented yet")
}
