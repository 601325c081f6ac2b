//! `capsid bench`: time one inference batch and one training step of a network; prints one JSON
//! line with the same keys as `shared/bench/torch_reference.py`, so both can be compared.

use anyhow::{bail, Context};
use capsid_nn::bench::{self, BenchSpec};

/// Arguments of `capsid bench`.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Prints the CPU, its instruction sets and capsid's kernel paths on stderr, then one JSON line:
model, patch, batch, classes, threads, params, infer_ms, train_ms (medians over --iters after
--warmup runs), device, burn, cpu, isa, kernels, precision (of the convolutions' products:
f32, or bf16 with --precision bf16 on a CPU with AVX512-BF16). A training step is forward +
Dice/CE loss (+ 0.1 x reconstruction BCE for ucaps) + backward + Adam (lr 1e-4) on random
input.

Examples:
  capsid bench --model unet --patch 32 --batch 4 --threads 2
  capsid bench --model ucaps --patch 64 --batch 4 --threads 2 \\
      --num-classes 4 --iters 5 --warmup 2
  capsid bench --model unet --patch 32 --batch 4 --threads 2 --precision bf16
  # the PyTorch reference with the same arguments, for the ratio:
  python shared/bench/torch_reference.py --model ucaps --patch 64 \\
      --batch 4 --threads 2")]
pub struct Args {
    /// Network: unet or ucaps.
    #[arg(long, default_value = "unet")]
    pub model: String,
    /// Cubic patch edge in voxels (multiple of 4 for unet, 8 for ucaps).
    #[arg(long, default_value_t = 32)]
    pub patch: usize,
    /// Patches per batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Network classes including background (`--classes` is the old spelling; elsewhere
    /// `--classes` is a class table).
    #[arg(long = "num-classes", alias = "classes", default_value_t = 4)]
    pub classes: usize,
    /// CPU threads (default: all cores, as every command).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Backend: flex (CPU), wgpu, vulkan, cuda, rocm (GPU ones only if built with the feature).
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// Timed runs (median reported).
    #[arg(long, default_value_t = 5)]
    pub iters: usize,
    /// Untimed runs first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Seed of the weights and the random input.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Time only inference or only training steps (the other key is null), e.g. for profiling.
    #[arg(long, value_parser = ["infer", "train"])]
    pub only: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    crate::keep_freed_memory();
    if args.threads == Some(0) {
        bail!("--threads must be at least 1 (leave it out to use all cores)");
    }
    capsid_nn::set_threads(args.threads.unwrap_or(0))?;
    let device = capsid_nn::parse_device(&args.device)?;
    let spec = BenchSpec {
        model: args.model.clone(),
        patch: args.patch,
        batch: args.batch,
        classes: args.classes,
        threads: args.threads.unwrap_or_else(rayon_threads),
        warmup: args.warmup,
        iters: args.iters,
        seed: args.seed,
        infer: args.only.as_deref() != Some("train"),
        train: args.only.as_deref() != Some("infer"),
    };
    eprintln!("cpu: {}", capsid_conv::cpu::cpu_report().line());
    let result = bench::run(&spec, &device, &args.device)
        .with_context(|| format!("benchmark of {}", args.model))?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
