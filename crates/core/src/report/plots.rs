//! The report's plots, drawn as SVG text by `plotters` (its SVG backend writes `<text>`
//! elements for labels and needs no font files), to be inlined in the HTML page.

use plotters::prelude::*;

use super::text::bytes;
use super::{Event, History};

const SIZE: (u32, u32) = (760, 260);
const DAY: f64 = 86_400.0;
const RED_: RGBColor = RGBColor(200, 30, 30);
const GREEN_: RGBColor = RGBColor(30, 140, 60);
const BLUE_: RGBColor = RGBColor(40, 90, 180);
const ORANGE_: RGBColor = RGBColor(220, 120, 20);

type Drawn = Result<String, String>;

fn date(t: f64) -> String {
    jiff::Timestamp::from_second(t as i64)
        .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// An x range around `xs` (at least a day wide) and a y range from 0 to above `ys`' largest.
fn ranges(
    xs: impl Iterator<Item = f64> + Clone,
    ys: impl Iterator<Item = f64>,
) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let mut lo = xs.clone().fold(f64::INFINITY, f64::min);
    let mut hi = xs.fold(f64::NEG_INFINITY, f64::max);
    // No points (or no finite ones): an infinite range would make plotters look for axis
    // labels forever.
    if !(lo.is_finite() && hi.is_finite()) {
        (lo, hi) = (0.0, DAY);
    }
    let pad = ((hi - lo) * 0.05).max(DAY / 2.0);
    let top = ys.filter(|y| y.is_finite()).fold(0.0, f64::max).max(1.0) * 1.1;
    (lo - pad..hi + pad, 0.0..top)
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Repository size (line) at each backup.
pub fn size(h: &History) -> Drawn {
    line_plot(
        &[(h.size.as_slice(), BLUE_)],
        "Repository size (estimated at each backup)",
        &|y| bytes(y),
        80,
    )
}

/// Seconds of backups (blue) and restores (orange).
pub fn durations(h: &History) -> Drawn {
    line_plot(
        &[
            (h.backup_seconds.as_slice(), BLUE_),
            (h.restore_seconds.as_slice(), ORANGE_),
        ],
        "Backup (blue) and restore (orange) durations, seconds",
        &|y| format!("{y:.1} s"),
        60,
    )
}

/// Bytes stored per day, as bars.
pub fn daily_growth(h: &History) -> Drawn {
    let mut svg = String::new();
    let pts = &h.daily_growth;
    let (mut xr, yr) = ranges(pts.iter().map(|p| p.0), pts.iter().map(|p| p.1));
    xr.end += DAY;
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Stored per day", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&|x| date(*x))
            .y_label_formatter(&|y| bytes(*y))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(pts.iter().map(|(x, y)| {
                Rectangle::new(
                    [(*x + DAY * 0.1, 0.0), (*x + DAY * 0.9, *y)],
                    GREEN_.filled(),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Checks, drills, forgets and prunes on a timeline: a dot for success, a cross for failure.
pub fn timeline(events: &[Event]) -> Drawn {
    const ROWS: [&str; 6] = ["check", "drill", "restore", "put-back", "forget", "prune"];
    let mut svg = String::new();
    let xs: Vec<f64> = events.iter().map(|e| super::unix(&e.time)).collect();
    let (xr, _) = ranges(xs.iter().copied(), std::iter::empty());
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Checks, drills, restores and deletions (red cross: failed)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d(xr, -0.5..(ROWS.len() as f64 - 0.5))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&|x| date(*x))
            .y_labels(ROWS.len())
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 0.01 && i >= 0.0 {
                    ROWS.get(i as usize)
                        .map_or(String::new(), |s| s.to_string())
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(err)?;
        let row = |e: &Event| ROWS.iter().position(|r| *r == e.operation).unwrap_or(0) as f64;
        let ok: Vec<(f64, f64)> = events
            .iter()
            .zip(&xs)
            .filter(|(e, _)| e.ok)
            .map(|(e, x)| (*x, row(e)))
            .collect();
        let failed: Vec<(f64, f64)> = events
            .iter()
            .zip(&xs)
            .filter(|(e, _)| !e.ok)
            .map(|(e, x)| (*x, row(e)))
            .collect();
        chart
            .draw_series(ok.iter().map(|p| Circle::new(*p, 5, GREEN_.filled())))
            .map_err(err)?;
        chart
            .draw_series(
                failed
                    .iter()
                    .map(|p| Cross::new(*p, 6, RED_.stroke_width(3))),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Lines with a dot at each point, one per series in its colour, over time.
fn line_plot(
    series: &[(&[(f64, f64)], RGBColor)],
    caption: &str,
    fmt: &dyn Fn(f64) -> String,
    y_label_width: u32,
) -> Drawn {
    let mut svg = String::new();
    let all = series.iter().flat_map(|(pts, _)| pts.iter());
    let (xr, yr) = ranges(all.clone().map(|p| p.0), all.map(|p| p.1));
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(y_label_width)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&|x| date(*x))
            .y_label_formatter(&|y| fmt(*y))
            .draw()
            .map_err(err)?;
        for (pts, color) in series {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), *color))
                .map_err(err)?;
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}
