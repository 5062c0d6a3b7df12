//! Horizontal stacked bars: one row per label, the first at the top, each
//! row's segments laid end to end in their series' colours.

use plotters::prelude::*;

use super::key::{keyed_svg, Item};
use super::{plain_mesh, CAPTION, FONT};
use crate::error::Result;

/// What a stacked bar chart shows.
pub struct Stacked<'a> {
    /// The title.
    pub caption: &'a str,
    /// Width of the column of row labels.
    pub label_width: u32,
    /// Height of a row.
    pub row_height: u32,
    /// Per row: its label and one length per series (0 draws nothing).
    pub rows: &'a [(String, Vec<f64>)],
    /// The series, in stacking order, named in the key.
    pub series: &'a [Item],
    /// The end of the x axis.
    pub x_max: f64,
    /// The x axis's name.
    pub x_desc: &'a str,
    /// The x axis's tick labels.
    pub x_label: &'a dyn Fn(f64) -> String,
}

/// The label of row `r` counted from the bottom at `v` of `n` rows.
fn row_label(v: &SegmentValue<u32>, n: u32, rows: &[(String, Vec<f64>)]) -> String {
    match v {
        SegmentValue::CenterOf(i) => (n - 1)
            .checked_sub(*i)
            .and_then(|r| rows.get(r as usize))
            .map_or(String::new(), |r| r.0.clone()),
        _ => String::new(),
    }
}

/// Draws the chart.
pub fn stacked(spec: &Stacked) -> Result<String> {
    let n = spec.rows.len().max(1) as u32;
    let height = 96 + spec.row_height * n.max(2);
    keyed_svg((900, height), spec.series, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(spec.caption, (FONT, CAPTION))
            .margin(12)
            .margin_right(28)
            .x_label_area_size(52)
            .y_label_area_size(spec.label_width)
            .build_cartesian_2d(0f64..spec.x_max, (0u32..n.max(2) - 1).into_segmented())?;
        let mut mesh = chart.configure_mesh();
        plain_mesh(&mut mesh);
        mesh.disable_y_mesh()
            .y_labels(n as usize)
            .y_label_formatter(&|v| row_label(v, n, spec.rows))
            .x_labels(8)
            .x_label_formatter(&|x| (spec.x_label)(*x))
            .x_desc(spec.x_desc)
            .draw()?;
        for (s, item) in spec.series.iter().enumerate() {
            let bars = spec
                .rows
                .iter()
                .enumerate()
                .filter(|(_, (_, v))| v[s] > 0.0);
            chart.draw_series(bars.map(|(r, (_, lengths))| {
                let r = n - 1 - r as u32;
                let x0: f64 = lengths[..s].iter().sum();
                let mut rect = Rectangle::new(
                    [
                        (x0, SegmentValue::Exact(r)),
                        (x0 + lengths[s], SegmentValue::Exact(r + 1)),
                    ],
                    item.style,
                );
                rect.set_margin(5, 5, 0, 0);
                rect
            }))?;
        }
        Ok(())
    })
}
