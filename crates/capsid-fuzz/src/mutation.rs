//! Random mutation of inputs: bit flips, interesting integers and floats at header words, byte
//! insertions and deletions, splices, repeated chunks, truncation.

use rand::Rng;

const INTERESTING: [i64; 14] = [
    0,
    -1,
    1,
    2,
    3,
    101,
    255,
    256,
    65535,
    i32::MAX as i64,
    i32::MIN as i64,
    0x7fff_ff00,
    1024,
    -1024,
];

/// One random mutation of `input` (or a splice with `other`).
pub fn mutate(rng: &mut impl Rng, input: &mut Vec<u8>, other: &[u8]) {
    let n = rng.gen_range(1..=4);
    for _ in 0..n {
        let len = input.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] = rng.gen();
            }
            2 if len >= 4 => {
                // An interesting 32-bit integer, 4-aligned (MRC header words), either byte order.
                let i = rng.gen_range(0..len / 4) * 4;
                let v = INTERESTING[rng.gen_range(0..INTERESTING.len())] as i32;
                let b = if rng.gen() {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                input[i..i + 4].copy_from_slice(&b);
            }
            3 if len >= 4 => {
                // A float word: NaN, infinity, 0, negative, huge.
                let i = rng.gen_range(0..len.min(1024) / 4) * 4;
                let f = [f32::NAN, f32::INFINITY, 0.0, -1.0, 1e30, f32::MIN_POSITIVE]
                    [rng.gen_range(0..6)];
                input[i..i + 4].copy_from_slice(&f.to_le_bytes());
            }
            4 => {
                let i = rng.gen_range(0..=len);
                let k = rng.gen_range(1..=16);
                let bytes: Vec<u8> = (0..k)
                    .map(|_| {
                        if rng.gen_bool(0.5) {
                            b"\n\t ,;:=_\"'#{}[]<>/-.0123456789eE+"[rng.gen_range(0..33)]
                        } else {
                            rng.gen()
                        }
                    })
                    .collect();
                input.splice(i..i, bytes);
            }
            5 if len > 0 => {
                let i = rng.gen_range(0..len);
                let k = rng.gen_range(1..=(len - i).min(64));
                input.drain(i..i + k);
            }
            6 if !other.is_empty() => {
                let cut = rng.gen_range(0..=len);
                let from = rng.gen_range(0..other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => {
                // Repeat a chunk (long lines, repeated loops, many columns).
                let i = rng.gen_range(0..len);
                let k = rng.gen_range(1..=(len - i).min(128));
                let chunk = input[i..i + k].to_vec();
                for _ in 0..rng.gen_range(1..8) {
                    input.splice(i..i, chunk.iter().copied());
                }
            }
            _ if len > 0 => {
                input.truncate(rng.gen_range(0..len));
            }
            _ => input.push(rng.gen()),
        }
    }
    input.truncate(1 << 20);
}
