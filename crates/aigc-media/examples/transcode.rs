//! Decodes an audio file with [`AudioReader`] and writes it with [`AudioWriter`] (the output's
//! format follows its extension, else the input's): `cargo run -p aigc-media --example transcode
//! -- IN OUT`. Prints the stream parameters and the time spent decoding and encoding.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aigc_media::{AudioReader, AudioWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: transcode IN OUT".into());
    };
    let mut reader = AudioReader::open(input)?;
    let info = reader.info().clone();
    println!("input: {info:?}");
    let mut writer = AudioWriter::create_for_path(&info, output)?;
    let (mut decode, mut encode) = (Duration::ZERO, Duration::ZERO);
    let mut frames = 0u64;
    loop {
        let t = Instant::now();
        let Some(block) = reader.next_block()? else {
            break;
        };
        decode += t.elapsed();
        frames += (block.len() / info.channels) as u64;
        let t = Instant::now();
        writer.write(block)?;
        encode += t.elapsed();
    }
    let t = Instant::now();
    let summary = writer.finish()?;
    encode += t.elapsed();
    let seconds = frames as f64 / f64::from(info.sample_rate);
    println!("output: {summary:?}");
    println!(
        "{seconds:.2} s of audio; decode {:.3} s ({:.0}× real time), encode {:.3} s ({:.0}× real time)",
        decode.as_secs_f64(),
        seconds / decode.as_secs_f64(),
        encode.as_secs_f64(),
        seconds / encode.as_secs_f64()
    );
    Ok(())
}
