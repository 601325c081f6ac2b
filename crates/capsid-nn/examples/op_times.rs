//! Times the Burn tensor operations between the convolutions of capsid's networks (flex backend,
//! 2 threads, UNet patch-32 sizes, medians of 10): the memory-bound steps of a forward pass.
//! Run: `cargo run --release -p capsid-nn --example op_times`
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use capsid_nn::burn;
use capsid_nn::burn::tensor::{activation::relu, Device, Distribution, Tensor};
use capsid_nn::model::ops::{max_pool3d_2, pad_end_1, upsample_nearest2};

fn time<const D: usize, F: FnMut() -> Tensor<D>>(name: &str, mut f: F) {
    let _ = f();
    let mut ms: Vec<f64> = (0..10)
        .map(|_| {
            let s = std::time::Instant::now();
            let _ = f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!("{name:40} {:8.2} ms", ms[5]);
}

fn main() {
    capsid_nn::set_threads(2).unwrap();
    let dev = Device::flex();
    let a = Tensor::<5>::random([4, 32, 32, 32, 32], Distribution::Default, &dev);
    let b = Tensor::<5>::random([4, 48, 32, 32, 32], Distribution::Default, &dev);
    let c = Tensor::<5>::random([4, 48, 16, 16, 16], Distribution::Default, &dev);
    time("relu [4,32,32³]", || relu(a.clone()));
    time("max_pool3d_2 [4,32,32³]", || max_pool3d_2(a.clone()));
    time("  max_pool2d part", || {
        max_pool2d(
            a.clone().reshape([4, 32 * 32, 32, 32]),
            MaxPoolOptions::new([2, 2]),
        )
    });
    time("cat [4,48,32³] + [4,32,32³] on dim 1", || {
        Tensor::cat(vec![b.clone(), a.clone()], 1)
    });
    time("  same as [4, C·32³] on dim 1", || {
        Tensor::cat(
            vec![
                b.clone().reshape([4, 48 * 32768]),
                a.clone().reshape([4, 32 * 32768]),
            ],
            1,
        )
    });
    time("upsample_nearest2 [4,48,16³]", || {
        upsample_nearest2(c.clone())
    });
    time("pad_end_1 ∘ upsample [4,48,16³]", || {
        pad_end_1(upsample_nearest2(c.clone()))
    });
}
