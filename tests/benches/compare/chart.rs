//! The chart BENCHMARKS.md embeds (full mode): throughput against concurrency, log-log,
//! for Herald, the limits and the peers. Left: durable accept against concurrent
//! senders; right: end-to-end delivery (256 B, no failures) against attempts in flight.
//! SVG only, drawn by plotters with its built-in text layout (no font files needed).

use std::path::Path;

use plotters::prelude::*;

use crate::{accept, e2e};

/// One line: a name, a colour and (x, events/s) points.
type Line = (&'static str, RGBColor, Vec<(f64, f64)>);

const HERALD: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const HERALD_2: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const LIMIT: RGBColor = RGBColor(0x2c, 0x2c, 0x2c);
const LIMIT_2: RGBColor = RGBColor(0x8c, 0x8c, 0x8c);
const NAIVE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const APALIS: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    xs: (f64, f64),
    ticks: &[f64],
    lines: &[Line],
) -> Result<(), String> {
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.2.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = 10f64.powf(ys.iter().copied().fold(f64::MAX, f64::min).log10().floor());
    let hi = 10f64.powf(ys.iter().copied().fold(1.0, f64::max).log10().ceil());
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (xs.0..xs.1).log_scale().with_key_points(ticks.to_vec()),
            (lo..hi).log_scale(),
        )
        .map_err(|e| format!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("events/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| format!("{e:?}"))?;
    for (name, color, points) in lines {
        let color = *color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| format!("{e:?}"))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| format!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| format!("{e:?}"))
}

/// Draws the chart to `path`.
pub(crate) fn draw(path: &Path, accept: &[accept::Row], e2e: &[e2e::Row]) -> Result<(), String> {
    let at = |f: &dyn Fn(&accept::Row) -> f64| -> Vec<(f64, f64)> {
        accept.iter().map(|r| (r.senders as f64, f(r))).collect()
    };
    let accept_lines: Vec<Line> = vec![
        ("Herald (delivery parked)", HERALD, at(&|r| r.parked.rate)),
        ("Herald (accept while delivering)", HERALD_2, at(&|r| r.delivering.rate)),
        ("raw redb at Herald's batch", LIMIT, at(&|r| r.raw_batched.rate)),
        ("raw redb, 1 per commit", LIMIT_2, at(&|r| r.raw_one.rate)),
        ("naive", NAIVE, at(&|r| r.naive.rate)),
        ("apalis-sqlite", APALIS, at(&|r| r.apalis.rate)),
    ];
    let plain: Vec<&e2e::Row> = e2e
        .iter()
        .filter(|r| r.cell.body == 256 && r.cell.fail_permille == 0)
        .collect();
    let on = |f: &dyn Fn(&e2e::Row) -> f64| -> Vec<(f64, f64)> {
        plain.iter().map(|r| (r.cell.in_flight as f64, f(r))).collect()
    };
    let e2e_lines: Vec<Line> = vec![
        ("raw reqwest→hyper", LIMIT, on(&|r| r.raw.rate)),
        ("Herald tokio", HERALD, on(&|r| r.tokio.rate)),
        ("Herald smol", HERALD_2, on(&|r| r.smol.rate)),
        ("naive", NAIVE, on(&|r| r.naive.rate)),
        ("apalis-sqlite", APALIS, on(&|r| r.apalis.rate)),
    ];
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
    let (left, right) = root.split_horizontally(600);
    panel(
        &left,
        "Durable accept (fsync on, 256 B)",
        "concurrent senders",
        (0.8, 1400.0),
        &[1.0, 64.0, 1024.0],
        &accept_lines,
    )?;
    panel(
        &right,
        "End-to-end delivery (256 B, keep-alive)",
        "attempts in flight",
        (12.0, 85.0),
        &[16.0, 64.0],
        &e2e_lines,
    )?;
    root.present().map_err(|e| format!("{e:?}"))
}
