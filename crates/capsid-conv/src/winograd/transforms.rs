//! The F(2×2×2, 3×3×3) transforms: weights (`G g Gᵀ`, once per call), and per tile row the
//! input (`Bᵀ d B`) and output (`Aᵀ M A`) transforms over whole rows of x.

use crate::common::{Dims, SharedMut};

/// Transformed weights `U[group][ξ][o][c]` (ξ = (a·4 + b)·4 + e over z, y, x) from weights
/// `[c_out, c_in / groups, 3, 3, 3]`.
pub(super) fn transform_weights(d: &Dims, w: &[f32]) -> Vec<f32> {
    const G: [[f32; 3]; 4] = [
        [1.0, 0.0, 0.0],
        [0.5, 0.5, 0.5],
        [0.5, -0.5, 0.5],
        [0.0, 0.0, 1.0],
    ];
    let (cig, cog) = (d.cig(), d.cog());
    let mut u = vec![0.0f32; d.groups * 64 * cog * cig];
    for g in 0..d.groups {
        for o in 0..cog {
            for c in 0..cig {
                let k = &w[((g * cog + o) * cig + c) * 27..][..27];
                // z, then y, then x: t1[a][ky][kx], t2[a][b][kx], u[a][b][e].
                let mut t1 = [[[0.0f32; 3]; 3]; 4];
                for (a, row) in G.iter().enumerate() {
                    for ky in 0..3 {
                        for kx in 0..3 {
                            t1[a][ky][kx] =
                                (0..3).map(|kz| row[kz] * k[(kz * 3 + ky) * 3 + kx]).sum();
                        }
                    }
                }
                let mut t2 = [[[0.0f32; 3]; 4]; 4];
                for (t2a, t1a) in t2.iter_mut().zip(t1.iter()) {
                    for (t2ab, row) in t2a.iter_mut().zip(G.iter()) {
                        for (kx, v) in t2ab.iter_mut().enumerate() {
                            *v = (0..3).map(|ky| row[ky] * t1a[ky][kx]).sum();
                        }
                    }
                }
                for (a, t2a) in t2.iter().enumerate() {
                    for (b, t2ab) in t2a.iter().enumerate() {
                        for (e, row) in G.iter().enumerate() {
                            let v: f32 = (0..3).map(|kx| row[kx] * t2ab[kx]).sum();
                            let xi = (a * 4 + b) * 4 + e;
                            u[((g * 64 + xi) * cog + o) * cig + c] = v;
                        }
                    }
                }
            }
        }
    }
    u
}

/// Four disjoint rows `buf[first + i·stride..][..len]`, i = 0..4 (`stride ≥ len`).
#[inline(always)]
fn rows4_mut(buf: &mut [f32], first: usize, stride: usize, len: usize) -> [&mut [f32]; 4] {
    let (_, rest) = buf.split_at_mut(first);
    let (r0, rest) = rest.split_at_mut(stride);
    let (r1, rest) = rest.split_at_mut(stride);
    let (r2, r3) = rest.split_at_mut(stride);
    [
        &mut r0[..len],
        &mut r1[..len],
        &mut r2[..len],
        &mut r3[..len],
    ]
}

/// Four rows `buf[first + i·stride..][..len]`, i = 0..4.
#[inline(always)]
fn rows4(buf: &[f32], first: usize, stride: usize, len: usize) -> [&[f32]; 4] {
    [
        &buf[first..][..len],
        &buf[first + stride..][..len],
        &buf[first + 2 * stride..][..len],
        &buf[first + 3 * stride..][..len],
    ]
}

/// Applies `f` to lanes of four input rows, writing `N` output rows, `L` values at a time (fixed-size
/// arrays, so the compiler emits vector code without alias checks), then the remainder one by one.
#[inline(always)]
fn lanes<const N: usize, F>(d: [&[f32]; 4], o: [&mut [f32]; N], f: F)
where
    F: Fn([f32; 4]) -> [f32; N],
{
    #[inline(always)]
    fn chunk<const L: usize, const N: usize, F: Fn([f32; 4]) -> [f32; N]>(
        d: &[&[f32]; 4],
        o: &mut [&mut [f32]; N],
        i: usize,
        f: &F,
    ) {
        let a: [[f32; L]; 4] = std::array::from_fn(|r| d[r][i..i + L].try_into().unwrap());
        let mut out = [[0.0f32; L]; N];
        for j in 0..L {
            let v = f([a[0][j], a[1][j], a[2][j], a[3][j]]);
            for r in 0..N {
                out[r][j] = v[r];
            }
        }
        for r in 0..N {
            o[r][i..i + L].copy_from_slice(&out[r]);
        }
    }
    let n = o[0].len();
    let mut o = o;
    let mut i = 0;
    while i + 16 <= n {
        chunk::<16, N, F>(&d, &mut o, i, &f);
        i += 16;
    }
    while i + 8 <= n {
        chunk::<8, N, F>(&d, &mut o, i, &f);
        i += 8;
    }
    while i < n {
        chunk::<1, N, F>(&d, &mut o, i, &f);
        i += 1;
    }
}

/// Splits `row` into its even (`row[2k]`) and odd (`row[2k + 1]`) values, `row.len() = 2·even.len()`.
#[inline(always)]
fn deinterleave(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let n = even.len();
    let odd = &mut odd[..n];
    let mut k = 0;
    while k + 16 <= n {
        let a: &[f32; 32] = row[2 * k..2 * k + 32].try_into().unwrap();
        let e: [f32; 16] = std::array::from_fn(|j| a[2 * j]);
        let o: [f32; 16] = std::array::from_fn(|j| a[2 * j + 1]);
        even[k..k + 16].copy_from_slice(&e);
        odd[k..k + 16].copy_from_slice(&o);
        k += 16;
    }
    while k < n {
        even[k] = row[2 * k];
        odd[k] = row[2 * k + 1];
        k += 1;
    }
}

/// `Bᵀ` along one axis, element-wise over rows: `o = (d0 − d2, d1 + d2, d2 − d1, d1 − d3)`.
#[inline(always)]
fn bt_rows(d: [&[f32]; 4], o: [&mut [f32]; 4]) {
    lanes(d, o, |[d0, d1, d2, d3]| {
        [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
    });
}

/// `Aᵀ` along one axis, element-wise over rows: `(lo, hi) = (m0 + m1 + m2, m1 − m2 − m3)`.
#[inline(always)]
fn at_rows(m: [&[f32]; 4], lo: &mut [f32], hi: &mut [f32]) {
    lanes(m, [lo, hi], |[m0, m1, m2, m3]| [m0 + m1 + m2, m1 - m2 - m3]);
}

/// Input transform of one tile row (tile z `iz`, tile y `iy`, all `tx` tiles along x) of one
/// channel `xc` (`[in_d, in_h, in_w]`): writes `V[ξ][at + i]` (ξ stride `xi_stride`) for tile i.
/// `rows` is scratch of `2·16·2·half` floats followed by `2·half` zeros.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn input_transform_row(
    d: &Dims,
    xc: &[f32],
    iz: usize,
    iy: usize,
    tx: usize,
    half: usize,
    rows: &mut [f32],
    v: &mut [f32],
    at: usize,
    xi_stride: usize,
) {
    let [id, ih, iw] = d.in_dhw;
    let [pz, py, px] = d.padding;
    let len = 2 * half;
    let (src, rest) = rows.split_at_mut(16 * len);
    let (tmp, rest) = rest.split_at_mut(16 * len);
    // Padded column j holds input column j − px; columns outside [j0, j1) are zero.
    let j0 = px.min(len);
    let j1 = (px + iw).min(len);
    let cols = j1 - j0;
    let zeros = &rest[..cols];
    let line = |dz: usize, dy: usize| -> &[f32] {
        let z = (2 * iz + dz) as isize - pz as isize;
        let yy = (2 * iy + dy) as isize - py as isize;
        if z < 0 || z >= id as isize || yy < 0 || yy >= ih as isize {
            zeros
        } else {
            &xc[(z as usize * ih + yy as usize) * iw..][..cols]
        }
    };
    // Bᵀ along z, straight from the input rows under the tile row: tmp[a·4 + dy] from rows dz.
    for dy in 0..4 {
        let [t0, t1, t2, t3] = rows4_mut(tmp, dy * len, 4 * len, len);
        for t in [&mut *t0, &mut *t1, &mut *t2, &mut *t3] {
            t[..j0].fill(0.0);
            t[j1..].fill(0.0);
        }
        bt_rows(
            [line(0, dy), line(1, dy), line(2, dy), line(3, dy)],
            [
                &mut t0[j0..j1],
                &mut t1[j0..j1],
                &mut t2[j0..j1],
                &mut t3[j0..j1],
            ],
        );
    }
    // Bᵀ along y: src[a·4 + b] from tmp[a·4 + dy].
    for a in 0..4 {
        bt_rows(
            rows4(tmp, a * 4 * len, len, len),
            rows4_mut(src, a * 4 * len, len, len),
        );
    }
    // Split even and odd columns: tmp[ab] = even columns (half), then odd columns (half).
    for ab in 0..16 {
        let row = &src[ab * len..][..len];
        let (even, odd) = tmp[ab * len..][..len].split_at_mut(half);
        deinterleave(row, even, odd);
    }
    // Bᵀ along x per tile i: padded columns 2i..2i+3 = even[i], odd[i], even[i+1], odd[i+1].
    for ab in 0..16 {
        let (even, odd) = tmp[ab * len..][..len].split_at(half);
        bt_rows(
            [&even[..tx], &odd[..tx], &even[1..tx + 1], &odd[1..tx + 1]],
            rows4_mut(v, at + ab * 4 * xi_stride, xi_stride, tx),
        );
    }
}

/// Output transform of one tile row for one output channel: reads `M[ξ][at + i]` (ξ stride
/// `xi_stride`) for tile i, writes output rows `2·iz + {0,1}`, `2·iy + {0,1}` of channel `ch`
/// (index into `[batch·c_out]`) plus `bias`, clipped to the output size.
///
/// # Safety
/// `yp` must point to the `[batch, c_out, out_dhw]` output and no other thread may write these rows.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn output_transform_row(
    d: &Dims,
    m: &[f32],
    at: usize,
    xi_stride: usize,
    tx: usize,
    rows: &mut [f32],
    yp: SharedMut,
    ch: usize,
    iz: usize,
    iy: usize,
    bias: f32,
) {
    let [od, oh, ow] = d.out_dhw;
    let (s1, rest) = rows.split_at_mut(32 * tx);
    let (s2, rest) = rest.split_at_mut(16 * tx);
    let (ev, rest) = rest.split_at_mut(tx);
    let od_row = &mut rest[..tx];
    // Aᵀ along z: s1[(oz·4 + b)·4 + e] from M[(a·4 + b)·4 + e].
    {
        let (lo, hi) = s1.split_at_mut(16 * tx);
        for be in 0..16 {
            at_rows(
                rows4(m, at + be * xi_stride, 16 * xi_stride, tx),
                &mut lo[be * tx..][..tx],
                &mut hi[be * tx..][..tx],
            );
        }
    }
    // Aᵀ along y: s2[(oz·2 + oy)·4 + e] from s1[(oz·4 + b)·4 + e].
    for oz in 0..2 {
        let (lo, hi) = s2[oz * 8 * tx..][..8 * tx].split_at_mut(4 * tx);
        for e in 0..4 {
            at_rows(
                rows4(s1, (oz * 16 + e) * tx, 4 * tx, tx),
                &mut lo[e * tx..][..tx],
                &mut hi[e * tx..][..tx],
            );
        }
    }
    // Aᵀ along x, interleaved into the output row.
    let out_len = d.out_len();
    for oz in 0..2 {
        let z = 2 * iz + oz;
        if z >= od {
            break;
        }
        for oy in 0..2 {
            let yy = 2 * iy + oy;
            if yy >= oh {
                break;
            }
            at_rows(rows4(s2, (oz * 2 + oy) * 4 * tx, tx, tx), ev, od_row);
            // SAFETY: row (z, yy) of channel `ch` is inside the output (z < od, yy < oh) and only
            // this block writes it (the caller's contract).
            let dst = unsafe {
                std::slice::from_raw_parts_mut(yp.get().add(ch * out_len + (z * oh + yy) * ow), ow)
            };
            let pairs = ow / 2;
            for ((pair, e), o) in dst
                .chunks_exact_mut(2)
                .zip(&ev[..pairs])
                .zip(&od_row[..pairs])
            {
                pair[0] = e + bias;
                pair[1] = o + bias;
            }
            if ow % 2 == 1 {
                dst[ow - 1] = ev[pairs] + bias;
            }
        }
    }
}
