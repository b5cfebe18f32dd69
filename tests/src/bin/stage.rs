//! `stage`: shows the animated test stage on an X display and plays tones into the sound
//! server, for benchmarks and manual experiments.
//!
//! ```text
//! stage WIDTHxHEIGHT+X+Y [SECONDS] [--tone SINK:HZ]... [--flash-beep-at SECONDS]
//! ```
//! Uses `$DISPLAY` and the sound server of the environment. `--flash-beep-at` flashes the stage
//! and beeps (3 kHz, into the first tone's sink) at the same instant.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::Stage;
use e2e::tone::Tone;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let geometry = args.first().context(
        "usage: stage WIDTHxHEIGHT+X+Y [SECONDS] [--tone SINK:HZ]... [--flash-beep-at SECONDS]",
    )?;
    let parse = |s: &str| -> Result<Vec<i64>> {
        s.split(['x', '+'])
            .map(|p| {
                p.parse::<i64>()
                    .with_context(|| format!("bad geometry {s:?}"))
            })
            .collect()
    };
    let g = parse(geometry)?;
    if g.len() != 4 {
        bail!("geometry must be WIDTHxHEIGHT+X+Y");
    }
    let secs: f64 = args
        .get(1)
        .filter(|a| !a.starts_with("--"))
        .map_or(Ok(3600.0), |s| s.parse())?;
    let display = std::env::var("DISPLAY").context("DISPLAY is not set")?;
    let stage = Stage::start(&display, g[2] as i16, g[3] as i16, g[0] as u16, g[1] as u16)?;
    let mut tones = Vec::new();
    let mut flash: Option<f64> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tone" => {
                let spec = it.next().context("--tone SINK:HZ")?;
                let (sink, hz) = spec.split_once(':').context("--tone SINK:HZ")?;
                tones.push(Tone::start_here(sink, hz.parse()?, 0.3)?);
            }
            "--flash-beep-at" => {
                flash = Some(it.next().context("--flash-beep-at SECONDS")?.parse()?)
            }
            _ => {}
        }
    }
    let start = Instant::now();
    if let Some(f) = flash {
        let at = start + Duration::from_secs_f64(f);
        stage.flash_at(at);
        if let Some(t) = tones.first() {
            t.beep_at(at, Duration::from_millis(150), 3000.0);
        }
    }
    std::thread::sleep(Duration::from_secs_f64(secs));
    drop(tones);
    Ok(())
}
