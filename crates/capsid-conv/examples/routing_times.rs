//! Speed of the fused capsule routing (`capsid_conv::routing`) on 3D-UCaps' layer shapes,
//! batch 4, patch 32 (or `--patch N`): median ms of the forward pass and of the gradient, and
//! the votes read per second.
//!
//! Run: `cargo run --release -p capsid-conv --example routing_times -- [--threads 2] [--patch 32]`.

/// The capsid binary's allocator: with the system allocator each large output is a fresh
/// mmap, and its unmapping (TLB shootdowns on a VM) can outweigh a kernel's own time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use capsid_conv::routing::{routing_backward, routing_forward, Routing};
use std::time::Instant;

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..7)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let threads = value("--threads", 2);
    let patch = value("--patch", 32);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("thread pool");
    // (name, in caps, out caps, atoms, map edge, iterations) of the default network.
    let layers = [
        ("primary 1x64 -> 16x4", 1, 16, 4, patch, 1),
        ("enc1 16x4 -> 16x8 /2", 16, 16, 8, patch / 2, 3),
        ("enc2 16x8 -> 16x8", 16, 16, 8, patch / 2, 3),
        ("enc3 16x8 -> 8x16 /2", 16, 8, 16, patch / 4, 3),
        ("enc4 8x16 -> 8x16", 8, 8, 16, patch / 4, 3),
        ("enc5 8x16 -> 8x32 /2", 8, 8, 32, patch / 8, 3),
        ("enc6 8x32 -> 4x64", 8, 4, 64, patch / 8, 3),
    ];
    println!("layer | votes (M) | forward ms | GB/s | gradient ms");
    for (name, ci, co, a, edge, iters) in layers {
        let r = Routing {
            batch: 4,
            in_caps: ci,
            out_caps: co,
            atoms: a,
            positions: edge * edge * edge,
            iters,
        };
        let votes: Vec<f32> = (0..r.votes_len())
            .map(|i| ((i % 97) as f32 - 48.0) / 48.0)
            .collect();
        let bias = vec![0.1f32; r.bias_len()];
        let grad: Vec<f32> = (0..r.out_len())
            .map(|i| ((i % 31) as f32 - 15.0) / 15.0)
            .collect();
        let fwd = median_ms(|| {
            std::hint::black_box(routing_forward(&r, &votes, &bias));
        });
        let bwd = median_ms(|| {
            std::hint::black_box(routing_backward(&r, &votes, &bias, &grad));
        });
        let gb = r.votes_len() as f64 * 4.0 / 1e9;
        println!(
            "{name} | {:.1} | {fwd:.1} | {:.1} | {bwd:.1}",
            r.votes_len() as f64 / 1e6,
            gb / (fwd / 1e3)
        );
    }
}
