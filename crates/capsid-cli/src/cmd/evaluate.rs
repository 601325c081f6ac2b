//! `capsid evaluate` (not yet implemented).

/// Arguments of `capsid evaluate`.
#[derive(clap::Args)]
#[command(after_help = "This subcommand is not implemented yet.")]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("capsid evaluate is not implemented yet")
}
