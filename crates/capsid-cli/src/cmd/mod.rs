//! One module per subcommand; each has `Args` (clap) and `run(Args) -> anyhow::Result<()>`.

pub mod bench;
pub mod convert;
pub mod demo;
pub mod evaluate;
pub mod features;
pub mod info;
pub mod mask;
pub mod matching;
pub mod orient;
pub mod pick;
pub mod prep;
pub mod report;
pub mod segment;
pub mod simulate;
pub mod slurm;
pub mod train;
pub mod view;
