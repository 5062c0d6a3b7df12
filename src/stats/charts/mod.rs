//! The charts of the HTML report, drawn with plotters into SVG strings:
//! stacked horizontal bars (`bars`) of token shares (`shares`) and of
//! removed records (`rejects`), each mix's deviation from its target ALMR
//! (`almr`) and length histograms (`lengths`). Every chart names its
//! series in a key under the plot (`key`), where it covers nothing.

mod almr;
mod bars;
mod key;
mod lengths;
mod rejects;
mod shares;

use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::Result;

pub use almr::almr_deviation;
pub use lengths::{length_bins, length_histogram};
pub use rejects::{rejects_by_reason, rejects_by_source};
pub use shares::token_shares;

/// Colours for sources, languages and stages, in order (matplotlib's
/// "tab10").
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The colour of item `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The charts' font family.
const FONT: &str = "sans-serif";

/// Font sizes as plotters takes them: its SVG writes `size / 1.24` pixels,
/// so tick labels and keys come out at 13.7 px, axis names at 14.5 px.
const TICK: u32 = 17;
/// Axis names.
const DESC: u32 = 18;
/// Titles.
const CAPTION: u32 = 22;

/// Draws into an SVG of `size` on white and gives its text.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(buf)
}

/// The mesh every chart shares: readable labels, faint major grid lines
/// and no minor ones.
fn plain_mesh<X: Ranged, Y: Ranged, DB: DrawingBackend>(mesh: &mut MeshStyle<'_, '_, X, Y, DB>) {
    mesh.label_style((FONT, TICK))
        .axis_desc_style((FONT, DESC))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT);
}

/// A tick label for a count: whole numbers only, thousands as `k`,
/// millions as `M`.
fn count_label(x: f64) -> String {
    if (x - x.round()).abs() > 1e-9 {
        return String::new();
    }
    match x.abs() {
        a if a >= 1e6 => format!("{}M", x / 1e6),
        a if a >= 1e4 => format!("{}k", x / 1e3),
        _ => format!("{x:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_labels_are_whole_and_short() {
        assert_eq!(count_label(0.5), "");
        assert_eq!(count_label(12.0), "12");
        assert_eq!(count_label(2500.0), "2500");
        assert_eq!(count_label(25000.0), "25k");
        assert_eq!(count_label(1.5e6), "1.5M");
    }
}
