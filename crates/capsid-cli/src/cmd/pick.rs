//! `capsid pick` (not yet implemented).

/// Arguments of `capsid pick`.
#[derive(clap::Args)]
#[command(after_help = "This subcommand is not implemented yet.")]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("capsid pick is not implemented yet")
}
