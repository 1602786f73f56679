//! The report's plots, drawn as SVG text by `plotters` (its SVG backend writes `<text>`
//! elements for labels and needs no font files), to be inlined in the HTML page.

use plotters::coord::types::RangedCoordf64;
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
    let pts = &h.daily_growth;
    let (mut xr, yr) = ranges(pts.iter().map(|p| p.0), pts.iter().map(|p| p.1));
    xr.end += DAY;
    let axes = Axes {
        caption: "Stored per day",
        y_label_width: 80,
        y_labels: None,
        y_label: &|y| bytes(y),
    };
    chart(&axes, xr, yr, |chart| {
        chart
            .draw_series(pts.iter().map(|(x, y)| {
                Rectangle::new(
                    [(*x + DAY * 0.1, 0.0), (*x + DAY * 0.9, *y)],
                    GREEN_.filled(),
                )
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// Checks, drills, forgets and prunes on a timeline: a dot for success, a cross for failure.
pub fn timeline(events: &[Event]) -> Drawn {
    const ROWS: [&str; 6] = ["check", "drill", "restore", "put-back", "forget", "prune"];
    let xs: Vec<f64> = events.iter().map(|e| super::unix(&e.time)).collect();
    let (xr, _) = ranges(xs.iter().copied(), std::iter::empty());
    let axes = Axes {
        caption: "Checks, drills, restores and deletions (red cross: failed)",
        y_label_width: 70,
        y_labels: Some(ROWS.len()),
        y_label: &|y| {
            let i = y.round();
            if (y - i).abs() < 0.01 && i >= 0.0 {
                ROWS.get(i as usize)
                    .map_or(String::new(), |s| s.to_string())
            } else {
                String::new()
            }
        },
    };
    chart(&axes, xr, -0.5..(ROWS.len() as f64 - 0.5), |chart| {
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
        Ok(())
    })
}

/// Lines with a dot at each point, one per series in its colour, over time.
fn line_plot(
    series: &[(&[(f64, f64)], RGBColor)],
    caption: &str,
    fmt: &dyn Fn(f64) -> String,
    y_label_width: u32,
) -> Drawn {
    let all = series.iter().flat_map(|(pts, _)| pts.iter());
    let (xr, yr) = ranges(all.clone().map(|p| p.0), all.map(|p| p.1));
    let axes = Axes {
        caption,
        y_label_width,
        y_labels: None,
        y_label: fmt,
    };
    chart(&axes, xr, yr, |chart| {
        for (pts, color) in series {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), *color))
                .map_err(err)?;
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(err)?;
        }
        Ok(())
    })
}

/// What a plot's frame says besides its dates: the caption and the y axis.
struct Axes<'a> {
    caption: &'a str,
    /// Room for the y labels, in pixels.
    y_label_width: u32,
    /// How many y labels (plotters' default when `None`).
    y_labels: Option<usize>,
    y_label: &'a dyn Fn(f64) -> String,
}

/// A plot's coordinates: time (Unix seconds) across, a value up.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Every plot's frame, drawn once here: an SVG of [`SIZE`] on white, the caption, dates along
/// the x axis and `axes`' labels up the y axis; `draw` adds the plot's own series.
fn chart(
    axes: &Axes<'_>,
    xr: std::ops::Range<f64>,
    yr: std::ops::Range<f64>,
    draw: impl FnOnce(&mut Chart<'_, '_>) -> Result<(), String>,
) -> Drawn {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(axes.caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(axes.y_label_width)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        let (x_label, y_label) = (|x: &f64| date(*x), |y: &f64| (axes.y_label)(*y));
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label);
        if let Some(n) = axes.y_labels {
            mesh.y_labels(n);
        }
        mesh.draw().map_err(err)?;
        draw(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
