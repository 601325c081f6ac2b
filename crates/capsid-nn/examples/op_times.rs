use capsid_nn::burn::tensor::{activation::relu, Device, Distribution, Tensor};
use capsid_nn::model::ops::{max_pool3d_2, pad_end_1, upsample_nearest2};
fn t<F: FnMut() -> Tensor<5>>(name: &str, mut f: F) {
    let _ = f();
    let s = std::time::Instant::now();
    for _ in 0..10 {
        let _ = f();
    }
    println!("{name:30} {:.2} ms", s.elapsed().as_secs_f64() * 100.0);
}
fn main() {
    capsid_nn::set_threads(2).unwrap();
    let dev = Device::flex();
    let a = Tensor::<5>::random([4, 32, 32, 32, 32], Distribution::Default, &dev);
    let b = Tensor::<5>::random([4, 48, 32, 32, 32], Distribution::Default, &dev);
    let c = Tensor::<5>::random([4, 48, 16, 16, 16], Distribution::Default, &dev);
    t("into_data only 4x32x32^3", || a.clone());
    t("relu 4x32x32^3", || relu(a.clone()));
    t("maxpool 4x32x32^3", || max_pool3d_2(a.clone()));
    t("cat 48+32 at 32^3", || {
        Tensor::cat(vec![b.clone(), a.clone()], 1)
    });
    t("upsample 4x48x16^3", || upsample_nearest2(c.clone()));
    t("pad_end(upsample) 4x48x16^3", || {
        pad_end_1(upsample_nearest2(c.clone()))
    });
}
