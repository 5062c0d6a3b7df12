//! The key under a chart: one item per series, a swatch or a short line
//! in its style, then its name; items wrap onto more rows as needed.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{svg, FONT, TICK};
use crate::error::Result;

/// One series named in a key.
pub struct Item {
    /// The name shown.
    pub name: String,
    /// How its series is drawn: a filled style gives a swatch (for bars),
    /// any other a short line (for lines).
    pub style: ShapeStyle,
}

impl Item {
    /// An item for bars of `colour`.
    pub fn swatch(name: impl Into<String>, colour: impl Color) -> Item {
        Item {
            name: name.into(),
            style: colour.filled(),
        }
    }
}

/// Height of one row of the key.
const ROW: u32 = 26;

/// Where the key starts on the left.
const LEFT: i32 = 60;

/// The room a mark takes before its name.
const MARK: i32 = 30;

/// Where each item goes: (row, x), rows wrapping at `width`.
fn layout(items: &[Item], width: u32) -> Vec<(u32, i32)> {
    let (mut row, mut x) = (0, LEFT);
    let mut at = Vec::new();
    for item in items {
        let w = MARK + (item.name.chars().count() as f64 * 7.6).ceil() as i32 + 22;
        if x + w > width as i32 && x > LEFT {
            row += 1;
            x = LEFT;
        }
        at.push((row, x));
        x += w;
    }
    at
}

/// The height the key of `items` takes in a chart `width` wide.
fn height(items: &[Item], width: u32) -> u32 {
    layout(items, width)
        .last()
        .map_or(0, |a| (a.0 + 1) * ROW + 6)
}

/// Draws the key of `items` into `area`.
fn draw(area: &DrawingArea<SVGBackend, Shift>, items: &[Item], width: u32) -> Result<()> {
    let text = TextStyle::from((FONT, TICK).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (item, (row, x)) in items.iter().zip(layout(items, width)) {
        let y = (row * ROW + ROW / 2) as i32;
        match item.style.filled {
            true => area.draw(&Rectangle::new([(x, y - 7), (x + 20, y + 7)], item.style))?,
            false => area.draw(&PathElement::new([(x, y), (x + 24, y)], item.style))?,
        }
        area.draw(&Text::new(item.name.clone(), (x + MARK, y), text.clone()))?;
    }
    Ok(())
}

/// An SVG `size.0` wide: a plot `size.1` high drawn by `plot`, then the key
/// of `items` under it.
pub fn keyed_svg(
    size: (u32, u32),
    items: &[Item],
    plot: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let (width, plot_height) = size;
    svg((width, plot_height + height(items, width)), |root| {
        let (top, bottom) = root.split_vertically(plot_height);
        plot(&top)?;
        draw(&bottom, items, width)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_wrap_onto_rows() {
        let items: Vec<Item> = (0..6)
            .map(|i| Item::swatch(format!("item number {i}"), BLACK))
            .collect();
        let at = layout(&items, 500);
        assert_eq!(at[0], (0, LEFT));
        assert!(at.iter().all(|&(_, x)| x < 500));
        assert_eq!(at.last().unwrap().0, 2, "{at:?}");
        assert_eq!(height(&items, 500), 3 * ROW + 6);
        assert_eq!(height(&[], 500), 0);
    }
}
