//! Real PNG and JPEG files for uploads: smooth gradients with a random amount of noise, so the
//! encoded sizes vary from a few KB to about a megabyte like photos and screenshots do.

use anyhow::{Context, Result};
use rand::Rng;

/// An encoded image file.
pub struct Image {
    /// The file's bytes (a complete PNG or JPEG).
    pub bytes: Vec<u8>,
    /// `png` or `jpeg`, Discourse's `uploads.extension`.
    pub extension: &'static str,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
}

/// Draws an image whose longer side is at most `max_side` pixels: two thirds JPEG (photos),
/// one third PNG (screenshots).
pub fn random_image<R: Rng>(rng: &mut R, max_side: u32) -> Result<Image> {
    let max_side = max_side.max(32);
    // Log-uniform side length: many small pictures, a few large ones.
    let long = (32f64 * ((max_side as f64 / 32.0).powf(rng.random::<f64>()))) as u32;
    let ratio = rng.random_range(0.5f64..1.0);
    let short = ((long as f64) * ratio).max(16.0) as u32;
    let (width, height) = if rng.random_bool(0.5) {
        (long, short)
    } else {
        (short, long)
    };
    let jpeg = rng.random_ratio(2, 3);
    // Photos are noisy; screenshots are mostly flat.
    let noise = if jpeg {
        rng.random_range(8u8..48)
    } else {
        rng.random_range(0u8..12)
    };
    let pixels = pixels(rng, width, height, noise);
    if jpeg {
        let quality = rng.random_range(70u8..93);
        Ok(Image {
            bytes: encode_jpeg(&pixels, width, height, quality)?,
            extension: "jpeg",
            width,
            height,
        })
    } else {
        Ok(Image {
            bytes: encode_png(&pixels, width, height)?,
            extension: "png",
            width,
            height,
        })
    }
}

/// A small PNG thumbnail, as Discourse keeps under `optimized/`.
pub fn thumbnail<R: Rng>(rng: &mut R, width: u32, height: u32) -> Result<Vec<u8>> {
    let p = pixels(rng, width, height, 4);
    encode_png(&p, width, height)
}

fn pixels<R: Rng>(rng: &mut R, width: u32, height: u32, noise: u8) -> Vec<u8> {
    let base: [f32; 3] = [rng.random(), rng.random(), rng.random()];
    let dx: [f32; 3] = [
        rng.random_range(-1.0..1.0),
        rng.random_range(-1.0..1.0),
        rng.random_range(-1.0..1.0),
    ];
    let dy: [f32; 3] = [
        rng.random_range(-1.0..1.0),
        rng.random_range(-1.0..1.0),
        rng.random_range(-1.0..1.0),
    ];
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let mut noise_bytes = vec![0u8; (width * 3) as usize];
    for y in 0..height {
        if noise > 0 {
            rng.fill(&mut noise_bytes[..]);
        }
        for x in 0..width {
            for c in 0..3 {
                let v = base[c] + dx[c] * (x as f32 / w) + dy[c] * (y as f32 / h);
                let v = (v.rem_euclid(1.0) * 255.0) as i32;
                let n = if noise > 0 {
                    (noise_bytes[(x * 3) as usize + c] % noise) as i32 - (noise / 2) as i32
                } else {
                    0
                };
                out.push((v + n).clamp(0, 255) as u8);
            }
        }
    }
    out
}

fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().context("writing a PNG header")?;
    writer
        .write_image_data(pixels)
        .context("encoding PNG pixels")?;
    writer.finish().context("finishing a PNG")?;
    Ok(out)
}

fn encode_jpeg(pixels: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let enc = jpeg_encoder::Encoder::new(&mut out, quality);
    let (w, h) = (
        u16::try_from(width).context("JPEG width over 65535")?,
        u16::try_from(height).context("JPEG height over 65535")?,
    );
    enc.encode(pixels, w, h, jpeg_encoder::ColorType::Rgb)
        .context("encoding a JPEG")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn images_have_real_signatures_and_vary_in_size() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut sizes = Vec::new();
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..12 {
            let img = random_image(&mut rng, 400).unwrap();
            match img.extension {
                "png" => assert_eq!(&img.bytes[..8], b"\x89PNG\r\n\x1a\n"),
                "jpeg" => assert_eq!(&img.bytes[..3], b"\xff\xd8\xff"),
                other => panic!("unexpected extension {other}"),
            }
            kinds.insert(img.extension);
            sizes.push(img.bytes.len());
        }
        assert_eq!(kinds.len(), 2);
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(max > &(min * 4), "sizes too uniform: {sizes:?}");
    }
}
