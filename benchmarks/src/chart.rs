//! Line charts for the figures that are curves, drawn as SVG into `benchmarks/charts/` from a
//! bench's own results, so BENCHMARKS.md shows the shape the tables sum up.

use std::path::PathBuf;

use plotters::prelude::*;

/// Colours of the series, in order.
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Draws `series` (a name and its `(x, y)` points each) as lines with markers into
/// `benchmarks/charts/<file>` and returns the path. Both axes start at zero.
pub fn line(
    file: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("charts");
    std::fs::create_dir_all(&dir).expect("create benchmarks/charts");
    let path = dir.join(file);
    let points = series.iter().flat_map(|(_, points)| points);
    let x_max = points.clone().map(|p| p.0).fold(0.0, f64::max) * 1.05;
    let y_max = points.map(|p| p.1).fold(0.0, f64::max) * 1.15;
    {
        let root = SVGBackend::new(&path, (720, 420)).into_drawing_area();
        root.fill(&WHITE).expect("draw");
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max.max(1.0), 0.0..y_max.max(1.0))
            .expect("draw");
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .expect("draw");
        for (i, (name, points)) in series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .expect("draw")
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .expect("draw");
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .expect("draw");
        root.present().expect("write the chart");
    }
    path
}
