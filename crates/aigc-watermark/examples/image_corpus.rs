//! Deterministic corpus of synthetic "photographs" and graphics for measuring the image mark:
//! value-noise landscapes with gradients and blobs, flat-shaded graphics, text-like strokes on
//! paper, smooth gradients, fine textures and mixtures, 384 px to ~3000 px, portrait and
//! landscape, as RGB PNG.
//!
//! `cargo run --release -p aigc-watermark --example image_corpus -- DIR [MARKED] [UNMARKED]`
//! writes DIR/marked/NNN-kind-WxH.png (default 50) for the attack table and
//! DIR/unmarked/NNNN-kind-WxH.png (default 1000, 384–768 px) for the false-positive count.
//! The same arguments always produce the same bytes.

use std::path::Path;

/// xorshift64*: tiny, deterministic.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Smooth value noise: random values on a lattice of `cell` px, smoothstep-interpolated.
struct ValueNoise {
    cell: f32,
    cols: usize,
    values: Vec<f32>,
}
impl ValueNoise {
    fn new(rng: &mut Rng, w: usize, h: usize, cell: f32) -> Self {
        let cols = (w as f32 / cell) as usize + 3;
        let rows = (h as f32 / cell) as usize + 3;
        let values = (0..cols * rows).map(|_| rng.unit() * 2.0 - 1.0).collect();
        ValueNoise { cell, cols, values }
    }
    fn at(&self, x: f32, y: f32) -> f32 {
        let (fx, fy) = (x / self.cell, y / self.cell);
        let (ix, iy) = (fx as usize, fy as usize);
        let s = |t: f32| t * t * (3.0 - 2.0 * t);
        let (tx, ty) = (s(fx - ix as f32), s(fy - iy as f32));
        let v = |c: usize, r: usize| self.values[r * self.cols + c];
        let top = v(ix, iy) * (1.0 - tx) + v(ix + 1, iy) * tx;
        let bottom = v(ix, iy + 1) * (1.0 - tx) + v(ix + 1, iy + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }
}

/// Fractal noise: octaves from `largest` px down to 2 px, amplitude ∝ cell^`slope`.
fn fractal(rng: &mut Rng, w: usize, h: usize, largest: f32, slope: f32) -> Vec<f32> {
    let mut octaves = Vec::new();
    let mut cell = largest;
    while cell >= 2.0 {
        octaves.push((ValueNoise::new(rng, w, h, cell), cell.powf(slope)));
        cell /= 2.0;
    }
    let norm: f32 = octaves.iter().map(|o| o.1).sum();
    let mut out = vec![0.0f32; w * h];
    for (i, v) in out.iter_mut().enumerate() {
        let (x, y) = ((i % w) as f32, (i / w) as f32);
        *v = octaves.iter().map(|(n, a)| a * n.at(x, y)).sum::<f32>() / norm;
    }
    out
}

type Rgb = [f32; 3];

fn palette(rng: &mut Rng) -> Rgb {
    [
        rng.range(20.0, 235.0),
        rng.range(20.0, 235.0),
        rng.range(20.0, 235.0),
    ]
}

/// Paints a filled circle or rectangle.
fn shape(img: &mut [Rgb], w: usize, h: usize, rng: &mut Rng, colour: Rgb) {
    let (cx, cy) = (rng.range(0.0, w as f32), rng.range(0.0, h as f32));
    let size = rng.range(0.03, 0.25) * w.min(h) as f32;
    let round = rng.below(2) == 0;
    let (x0, x1) = ((cx - size).max(0.0) as usize, ((cx + size) as usize).min(w));
    let (y0, y1) = ((cy - size).max(0.0) as usize, ((cy + size) as usize).min(h));
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            if !round || dx * dx + dy * dy <= size * size {
                img[y * w + x] = colour;
            }
        }
    }
}

/// Text-like strokes: rows of short dark bars and hooks, like lines of print.
fn strokes(img: &mut [Rgb], w: usize, h: usize, rng: &mut Rng, ink: Rgb) {
    let size = rng.range(10.0, 28.0);
    let thick = (size / 7.0).max(1.5);
    let mut y = rng.range(size, 3.0 * size);
    while y < h as f32 - size {
        let mut x = rng.range(size, 4.0 * size);
        while x < w as f32 - size {
            let glyph_w = rng.range(0.4, 0.8) * size;
            let bars = 1 + rng.below(3);
            for b in 0..bars {
                let bx = x + b as f32 * glyph_w / bars as f32;
                let slant = rng.range(-0.2, 0.2);
                for t in 0..(size as usize) {
                    let yy = y - t as f32;
                    let xx = bx + slant * t as f32;
                    for d in 0..(thick as usize) {
                        let (px, py) = ((xx + d as f32) as usize, yy as usize);
                        if px < w && py < h {
                            img[py * w + px] = ink;
                        }
                    }
                }
            }
            // A horizontal stroke across the glyph now and then.
            if rng.below(3) == 0 {
                let yy = (y - rng.range(0.3, 0.9) * size) as usize;
                for xx in x as usize..((x + glyph_w) as usize).min(w) {
                    for d in 0..(thick as usize) {
                        if yy + d < h {
                            img[(yy + d) * w + xx] = ink;
                        }
                    }
                }
            }
            x += glyph_w + rng.range(0.15, 0.5) * size;
            if rng.below(7) == 0 {
                x += size;
            }
        }
        y += size * rng.range(1.5, 2.2);
    }
}

const KINDS: [&str; 6] = ["photo", "graphic", "text", "smooth", "texture", "mixed"];

/// One image of `kind` (index into KINDS), deterministic in `seed`.
fn generate(kind: usize, w: usize, h: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut img = vec![[0.0f32; 3]; w * h];
    match KINDS[kind] {
        "photo" | "mixed" => {
            // Landscape-like: sky gradient over fractal terrain, lit by a second noise field.
            let terrain = fractal(&mut rng, w, h, 256.0, 1.2);
            let detail = fractal(&mut rng, w, h, 32.0, 0.6);
            let (sky, ground) = (palette(&mut rng), palette(&mut rng));
            let horizon = rng.range(0.25, 0.6);
            for (i, p) in img.iter_mut().enumerate() {
                let (x, y) = ((i % w) as f32 / w as f32, (i / w) as f32 / h as f32);
                let line = horizon + 0.15 * terrain[i];
                let t = if y < line {
                    y / line.max(0.05)
                } else {
                    1.0 + 2.0 * detail[i]
                };
                for c in 0..3 {
                    p[c] = if y < line {
                        sky[c] * (0.7 + 0.3 * t) + 20.0 * x
                    } else {
                        ground[c] * (0.6 + 0.5 * terrain[i]) * t.clamp(0.2, 1.8) + 25.0 * detail[i]
                    };
                }
            }
            if KINDS[kind] == "mixed" {
                for _ in 0..6 {
                    let c = palette(&mut rng);
                    shape(&mut img, w, h, &mut rng, c);
                }
                let ink = [250.0, 250.0, 250.0];
                let band = h / 3;
                strokes(&mut img[band * w..2 * band * w], w, band, &mut rng, ink);
            }
        }
        "graphic" => {
            let bg = palette(&mut rng);
            img.iter_mut().for_each(|p| *p = bg);
            for _ in 0..(8 + rng.below(20)) {
                let c = palette(&mut rng);
                shape(&mut img, w, h, &mut rng, c);
            }
        }
        "text" => {
            let paper = [rng.range(225.0, 252.0); 3];
            let grain = fractal(&mut rng, w, h, 8.0, 0.5);
            for (p, g) in img.iter_mut().zip(&grain) {
                *p = [
                    paper[0] + 4.0 * g,
                    paper[1] + 4.0 * g,
                    paper[2] - 6.0 + 4.0 * g,
                ];
            }
            let ink = [
                rng.range(0.0, 60.0),
                rng.range(0.0, 60.0),
                rng.range(0.0, 90.0),
            ];
            strokes(&mut img, w, h, &mut rng, ink);
        }
        "smooth" => {
            let (a, b) = (palette(&mut rng), palette(&mut rng));
            let angle = rng.range(0.0, std::f32::consts::TAU);
            let soft = fractal(&mut rng, w, h, 512.0, 1.5);
            for (i, p) in img.iter_mut().enumerate() {
                let (x, y) = ((i % w) as f32 / w as f32, (i / w) as f32 / h as f32);
                let t = (0.5
                    + 0.7 * ((x - 0.5) * angle.cos() + (y - 0.5) * angle.sin())
                    + 0.2 * soft[i])
                    .clamp(0.0, 1.0);
                for c in 0..3 {
                    p[c] = a[c] * (1.0 - t) + b[c] * t + 1.5 * (rng.unit() - 0.5);
                }
            }
        }
        _ => {
            // Fine textures: fabric-like crossed stripes over fractal grain.
            let grain = fractal(&mut rng, w, h, 16.0, 0.3);
            let base = palette(&mut rng);
            let (f1, f2) = (rng.range(0.05, 0.4), rng.range(0.05, 0.4));
            for (i, p) in img.iter_mut().enumerate() {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let v = 30.0 * (x * f1 + 0.3 * y).sin() * (y * f2).cos() + 45.0 * grain[i];
                for c in 0..3 {
                    p[c] = base[c] + v;
                }
            }
        }
    }
    img.iter()
        .flat_map(|p| p.map(|v| v.round().clamp(0.0, 255.0) as u8))
        .collect()
}

fn write(dir: &Path, name: &str, w: usize, h: usize, rgb: &[u8]) -> Result<(), String> {
    let path = dir.join(name);
    image::save_buffer(
        &path,
        rgb,
        w as u32,
        h as u32,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(
        args.first()
            .ok_or("usage: image_corpus DIR [MARKED] [UNMARKED]")?,
    );
    let marked: usize = args
        .get(1)
        .map_or(Ok(50), |a| a.parse())
        .map_err(|e| format!("{e}"))?;
    let unmarked: usize = args
        .get(2)
        .map_or(Ok(1000), |a| a.parse())
        .map_err(|e| format!("{e}"))?;
    let (md, ud) = (dir.join("marked"), dir.join("unmarked"));
    for d in [&md, &ud] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    // Long sides spread from 384 to 3000 px, aspect 1:1 to 16:9, every other image portrait.
    let longs = [384, 512, 640, 800, 1024, 1280, 1600, 1920, 2400, 3000];
    let aspects = [1.0f32, 4.0 / 3.0, 3.0 / 2.0, 16.0 / 9.0];
    for i in 0..marked {
        let kind = i % KINDS.len();
        let long = longs[(i * 7 + i / 10) % longs.len()];
        let short = ((long as f32 / aspects[(i / 2) % aspects.len()]) as usize).max(384);
        let (w, h) = if i % 2 == 1 {
            (short, long)
        } else {
            (long, short)
        };
        let rgb = generate(kind, w, h, 1000 + i as u64);
        write(
            &md,
            &format!("{i:03}-{}-{w}x{h}.png", KINDS[kind]),
            w,
            h,
            &rgb,
        )?;
    }
    for i in 0..unmarked {
        let kind = i % KINDS.len();
        let mut rng = Rng::new(77_000 + i as u64);
        let (w, h) = (384 + rng.below(385), 384 + rng.below(385));
        let rgb = generate(kind, w, h, 50_000 + i as u64);
        write(
            &ud,
            &format!("{i:04}-{}-{w}x{h}.png", KINDS[kind]),
            w,
            h,
            &rgb,
        )?;
    }
    println!(
        "{marked} images in {}, {unmarked} in {}",
        md.display(),
        ud.display()
    );
    Ok(())
}
