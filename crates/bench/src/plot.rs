//! PNG line charts (plotters' bitmap backend). Text is drawn with a DejaVu font compiled
//! into the binary, so plotting needs no system fonts or fontconfig.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::BenchError;

const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 620);
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How the x axis is labelled.
#[derive(Debug, Clone)]
pub enum XAxis {
    /// Numbers, as they are.
    Numeric,
    /// Points 0, 1, 2… named by these labels (e.g. record sizes).
    Categories(Vec<String>),
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend's name for the line.
    pub name: String,
    /// (x, y) points, joined in order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart written as a PNG.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// The chart's title.
    pub title: String,
    /// The x axis's description.
    pub x_desc: String,
    /// The y axis's description.
    pub y_desc: String,
    /// How the x axis is labelled.
    pub x_axis: XAxis,
    /// The lines.
    pub series: Vec<Series>,
}

fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "the embedded DejaVu Sans font did not load".to_string())
        })
        .clone()
}

impl LineChart {
    /// Draws the chart to a PNG file.
    pub fn draw(&self, path: &Path) -> Result<(), BenchError> {
        let failed = |detail: String| BenchError::Plot {
            path: path.to_owned(),
            detail,
        };
        register_font().map_err(failed)?;
        self.render(path).map_err(failed)
    }

    fn render(&self, path: &Path) -> Result<(), String> {
        let points = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x_min, mut x_max, mut y_max) = (f64::MAX, f64::MIN, 0f64);
        for &(x, y) in points {
            x_min = x_min.min(x);
            x_max = x_max.max(x);
            y_max = y_max.max(y);
        }
        if x_min > x_max {
            (x_min, x_max) = (0.0, 1.0);
        }
        let pad = ((x_max - x_min) * 0.05).max(0.3);
        // Headroom above the data for the legend, which sits in the upper left corner.
        let headroom = 1.12 + 0.07 * self.series.len() as f64;
        let y_top = if y_max > 0.0 { y_max * headroom } else { 1.0 };

        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, (FAMILY, 24))
            .margin(18)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((x_min - pad)..(x_max + pad), 0f64..y_top)
            .map_err(|e| e.to_string())?;
        let categories = match &self.x_axis {
            XAxis::Categories(labels) => Some(labels.clone()),
            XAxis::Numeric => None,
        };
        let x_format = move |v: &f64| match &categories {
            Some(labels) => {
                let index = v.round();
                if (v - index).abs() < 1e-6 && index >= 0.0 {
                    labels.get(index as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            None => format!("{v}"),
        };
        let x_labels = match &self.x_axis {
            XAxis::Categories(labels) => labels.len().max(2),
            XAxis::Numeric => 10,
        };
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .x_labels(x_labels)
            .x_label_formatter(&x_format)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, series) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    series.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(&series.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(
                    series
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 4, colour.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        if !self.series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FAMILY, 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_with_categories_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        for (name, x_axis) in [
            (
                "cat.png",
                XAxis::Categories(vec!["10 KB".into(), "1 MB".into()]),
            ),
            ("num.png", XAxis::Numeric),
        ] {
            let path = dir.path().join(name);
            LineChart {
                title: "test".into(),
                x_desc: "x".into(),
                y_desc: "ms".into(),
                x_axis,
                series: vec![Series {
                    name: "store".into(),
                    points: vec![(0.0, 5.0), (1.0, 9.0)],
                }],
            }
            .draw(&path)
            .unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[1..4], b"PNG");
        }
    }

    #[test]
    fn an_empty_chart_still_draws() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.png");
        LineChart {
            title: "nothing measured".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            x_axis: XAxis::Numeric,
            series: Vec::new(),
        }
        .draw(&path)
        .unwrap();
        assert!(path.exists());
    }
}
