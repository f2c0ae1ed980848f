//! Axes over data ranges that are always drawable ([`Span`]), their tick labels, and the
//! polyline the timeline charts share.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::frame::{Area, DrawResult};
use super::palette::GRID;
use super::text::{desc_font, label_font, trim_number};

/// Plotters' chart context (its name clashes with ours).
pub(super) type Plot<'a> =
    plotters::chart::ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axis labels and a light grid at the labelled ticks only (finer lines make a scatter
/// of thousands of dots look grey).
pub(super) fn axes(
    chart: &mut Plot<'_>,
    x_desc: &str,
    y_desc: &str,
    x_label: &dyn Fn(&f64) -> String,
    y_label: &dyn Fn(&f64) -> String,
    x_labels: usize,
) -> DrawResult<()> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_label)
        .y_label_formatter(y_label)
        .x_labels(x_labels)
        .y_labels(8)
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .draw()?;
    Ok(())
}

/// Axes over finite, non-empty ranges (see [`Span`]).
pub(super) fn cartesian<'a>(area: &Area<'a>, x: &Span, y: &Span) -> DrawResult<Plot<'a>> {
    Ok(ChartBuilder::on(area)
        .margin_top(8)
        .margin_right(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x.start..x.end, y.start..y.end)?)
}

/// A data range, always finite and of positive width, so that plotters never divides by
/// zero nor loops over NaN key points.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    pub(super) start: f64,
    pub(super) end: f64,
}

impl Default for Span {
    fn default() -> Span {
        Span {
            start: f64::INFINITY,
            end: f64::NEG_INFINITY,
        }
    }
}

impl Span {
    pub(super) fn new(start: f64, end: f64) -> Span {
        let mut span = Span::default();
        span.add(start);
        span.add(end);
        span
    }

    pub(super) fn of(values: impl Iterator<Item = f64>) -> Span {
        let mut span = Span::default();
        values.for_each(|v| span.add(v));
        span
    }

    pub(super) fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.start = self.start.min(v);
            self.end = self.end.max(v);
        }
    }

    /// The range widened by `fraction` of its width on each side; an empty range becomes
    /// 0..1 and a single value ±0.5 around it (more where 0.5 is below the precision of
    /// f64: the width must stay positive).
    pub(super) fn padded(&self, fraction: f64) -> Span {
        if self.start > self.end {
            return Span {
                start: 0.0,
                end: 1.0,
            };
        }
        let pad = if self.end - self.start < 1e-9 {
            0.5
        } else {
            (self.end - self.start) * fraction
        };
        let (start, end) = (self.start - pad, self.end + pad);
        if end > start {
            Span { start, end }
        } else {
            let pad = self.start.abs().max(self.end.abs()) * 1e-6;
            Span {
                start: self.start - pad,
                end: self.end + pad,
            }
        }
    }

    pub(super) fn contains(&self, v: f64) -> bool {
        (self.start..=self.end).contains(&v)
    }

    pub(super) fn width(&self) -> f64 {
        let p = self.padded(0.0);
        p.end - p.start
    }
}

/// Tick label with as many decimals as the axis needs, trailing zeros dropped.
pub(super) fn tick(v: f64, span: f64) -> String {
    let step = span / 10.0;
    let decimals = if step.is_finite() && step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize + 1
    } else {
        0
    };
    trim_number(v, decimals)
}

/// A polyline, with dots when the points are few enough to be read one by one (a single
/// point draws no line at all).
pub(super) fn line<DB: DrawingBackend>(
    points: &[(f64, f64)],
    colour: RGBColor,
) -> LineSeries<DB, (f64, f64)> {
    let series = LineSeries::new(points.iter().copied(), colour.stroke_width(2));
    if points.len() <= 60 {
        series.point_size(2)
    } else {
        series
    }
}
