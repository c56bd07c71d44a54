//! The plots: grouped bars of the metric per country and per-country radar charts, drawn with
//! plotters' SVG backend.

use super::{direction, ReportInput, View};
use culturesteer_core::CountryCode;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub(super) enum PlotKind {
    Bars,
    Radar(CountryCode),
}

pub(super) struct Plot {
    pub(super) file: String,
    pub(super) kind: PlotKind,
}

/// A metric name made safe for a file name: ASCII alphanumerics, `-` and `_` kept (lowercased),
/// everything else becomes `_`.
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        let c = if ch.is_ascii_alphanumeric() || ch == '-' {
            ch.to_ascii_lowercase()
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() {
        "metric".to_string()
    } else {
        out
    }
}

/// Radars need at least three axes.
const RADAR_MIN_AXES: usize = 3;

pub(super) fn plot_list(input: &ReportInput, view: &View) -> Vec<Plot> {
    if !view.has_scores() {
        return Vec::new();
    }
    let mut out = vec![Plot {
        file: format!("{}_by_country.svg", sanitize(input.metric.name)),
        kind: PlotKind::Bars,
    }];
    for &c in &view.countries {
        if view.component_names(c).len() >= RADAR_MIN_AXES {
            out.push(Plot {
                file: format!("radar_{c}.svg"),
                kind: PlotKind::Radar(c),
            });
        }
    }
    out
}

/// Fixed palette (one colour per method, in display order; it cycles after ten methods).
const PALETTE: [RGBColor; 10] = [
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
const INK: RGBColor = RGBColor(33, 33, 33);
const GRID: RGBColor = RGBColor(200, 200, 200);
const FONT: &str = "sans-serif";

/// Colours of `methods`, stable across runs: the common methods have fixed colours, others a
/// colour chosen by a hash of the name; a colour already taken in this plot moves to the next
/// free one (while there are free ones).
fn method_colors(methods: &[&str]) -> Vec<RGBColor> {
    let preferred = |m: &str| -> usize {
        match m {
            "vanilla" => 0,
            "country-prompt" => 1,
            "wvs-profile" => 2,
            "disca" => 3,
            "disca+prior" | "disca-no-prior" => 4,
            "palette" => 5,
            _ => culturesteer_core::hash::fnv1a64(0, m.bytes()) as usize % PALETTE.len(),
        }
    };
    let mut used = [false; PALETTE.len()];
    methods
        .iter()
        .map(|m| {
            let mut k = preferred(m);
            if used.iter().any(|u| !u) {
                while used[k] {
                    k = (k + 1) % PALETTE.len();
                }
            }
            used[k] = true;
            PALETTE[k]
        })
        .collect()
}

/// Rough width in pixels of `text` at `size` px (SVG viewers lay the text out themselves; this
/// only reserves room).
fn text_width(text: &str, size: f64) -> i32 {
    (text.chars().count() as f64 * size * 0.6).ceil() as i32
}

/// plotters' SVG backend writes `font-size` as the requested size / 1.24; this undoes that so
/// sizes here are the rendered pixel sizes.
fn font_px(size: f64) -> f64 {
    size * 1.24
}

fn text_style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    (FONT, font_px(size))
        .into_font()
        .color(&color)
        .pos(Pos::new(h, v))
}

#[derive(Clone, Copy)]
enum Swatch {
    Bar(RGBColor),
    Line(RGBColor),
    Dashed(RGBColor),
}

fn legend_width(entries: &[(String, Swatch)]) -> i32 {
    entries
        .iter()
        .map(|(l, _)| text_width(l, 13.0))
        .max()
        .unwrap_or(0)
        + 60
}

/// Draws a legend box with its top-left corner at (x, y).
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    x: i32,
    y: i32,
    entries: &[(String, Swatch)],
) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let row = 22;
    let w = legend_width(entries) - 12;
    let h = row * entries.len() as i32 + 10;
    area.draw(&Rectangle::new([(x, y), (x + w, y + h)], WHITE.filled()))
        .map_err(|e| e.to_string())?;
    area.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        GRID.stroke_width(1),
    ))
    .map_err(|e| e.to_string())?;
    for (k, (label, swatch)) in entries.iter().enumerate() {
        let cy = y + 5 + row * k as i32 + row / 2;
        let (sx0, sx1) = (x + 8, x + 32);
        match *swatch {
            Swatch::Bar(c) => area.draw(&Rectangle::new(
                [(sx0 + 4, cy - 6), (sx1 - 4, cy + 6)],
                c.filled(),
            )),
            Swatch::Line(c) => area.draw(&PathElement::new(
                vec![(sx0, cy), (sx1, cy)],
                c.stroke_width(3),
            )),
            Swatch::Dashed(c) => area.draw(&DashedPathElement::new(
                vec![(sx0, cy), (sx1, cy)],
                5,
                3,
                c.stroke_width(2),
            )),
        }
        .map_err(|e| e.to_string())?;
        area.draw(&Text::new(
            label.clone(),
            (sx1 + 8, cy),
            text_style(13.0, INK, HPos::Left, VPos::Center),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn draw_title<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    width: i32,
) -> Result<(), String> {
    area.draw(&Text::new(
        title.to_string(),
        (width / 2, 14),
        text_style(18.0, INK, HPos::Center, VPos::Top),
    ))
    .map_err(|e| e.to_string())
}

fn bars_title(input: &ReportInput) -> String {
    format!(
        "{}: {} by country ({})",
        input.benchmark,
        input.metric.name,
        direction(&input.metric)
    )
}

/// Grouped bars of the metric per country, one colour per method, the floor as a dashed
/// segment across each group.
pub(super) fn bars_svg(input: &ReportInput, view: &View) -> Result<String, String> {
    let nc = view.countries.len().max(1);
    let nm = view.methods.len().max(1);
    let group_px = (20 * nm as i32 + 30).max(80);
    let y_label_px = 70;
    let chart_w = y_label_px + 20 + nc as i32 * group_px + 20;
    let colors = method_colors(&view.methods);
    let mut legend: Vec<(String, Swatch)> = view
        .methods
        .iter()
        .enumerate()
        .map(|(i, m)| (m.to_string(), Swatch::Bar(colors[i])))
        .collect();
    if !view.floor.is_empty() {
        legend.push((input.floor_label.clone(), Swatch::Dashed(INK)));
    }
    let legend_w = legend_width(&legend) + 10;
    let title = bars_title(input);
    let width = (chart_w + legend_w)
        .max(text_width(&title, 18.0) + 60)
        .max(480);
    let title_h = 48;
    let legend_h = 22 * legend.len() as i32 + 10;
    let height = (title_h + 420).max(title_h + legend_h + 40);

    // Value range over every finite value and floor, always including 0.
    let vals = view
        .cell
        .values()
        .map(|s| s.value)
        .chain(view.floor.values().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = vals.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        hi = lo + 1.0;
    }
    let pad = 0.08 * (hi - lo);
    hi += pad;
    if lo < 0.0 {
        lo -= pad;
    }
    if !(hi - lo).is_finite() {
        // Values near f64::MAX: no usable axis; draw an empty frame rather than fail.
        (lo, hi) = (0.0, 1.0);
    }

    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_title(&root, &title, width)?;
        let (_, body) = root.split_vertically(title_h);
        let (chart_area, legend_area) = body.split_horizontally(chart_w);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin_left(10)
            .margin_right(20)
            .margin_top(10)
            .margin_bottom(10)
            .x_label_area_size(50)
            .y_label_area_size(y_label_px)
            .build_cartesian_2d(-0.5f64..nc as f64 - 0.5, lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(GRID.mix(0.6))
            .x_labels(0)
            .y_label_formatter(&|y: &f64| format!("{y:.2}"))
            .x_desc("Country")
            .y_desc(format!(
                "{} ({})",
                input.metric.name,
                direction(&input.metric)
            ))
            .axis_desc_style((FONT, font_px(14.0)))
            .label_style((FONT, font_px(12.0)))
            .draw()
            .map_err(|e| e.to_string())?;
        let group = 0.8;
        let bar_w = group / nm as f64;
        for (ci, &c) in view.countries.iter().enumerate() {
            let left = ci as f64 - group / 2.0;
            for mi in 0..view.methods.len() {
                let Some(s) = view.get(mi, c) else { continue };
                if !s.value.is_finite() {
                    continue;
                }
                let x0 = left + mi as f64 * bar_w + bar_w * 0.08;
                let x1 = left + (mi + 1) as f64 * bar_w - bar_w * 0.08;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, 0.0), (x1, s.value)],
                        colors[mi].filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            if let Some(&f) = view.floor.get(&c) {
                if f.is_finite() {
                    let seg = vec![(left - 0.04, f), (left + group + 0.04, f)];
                    chart
                        .draw_series(std::iter::once(DashedPathElement::new(
                            seg,
                            6,
                            4,
                            INK.stroke_width(2),
                        )))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        // Country codes under each group (the mesh's own x labels sit on round numbers).
        for (ci, c) in view.countries.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(ci as f64, lo));
            root.draw(&Text::new(
                c.to_string(),
                (x, y + 8),
                text_style(13.0, INK, HPos::Center, VPos::Top),
            ))
            .map_err(|e| e.to_string())?;
        }
        draw_legend(&legend_area, 0, 20, &legend)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// The radial scale of a radar and its number of rings: [0, 1] in quarters when every value
/// lies there, else [min(0, min), max] widened to a round step (3 to 8 rings).
fn radar_scale(values: &[f64]) -> (f64, f64, usize) {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.iter().all(|v| (0.0..=1.0).contains(v)) {
        return (0.0, 1.0, 4);
    }
    let lo = finite.iter().copied().fold(0.0f64, f64::min);
    let hi = finite.iter().copied().fold(lo, f64::max);
    let span = hi - lo;
    if !span.is_finite() || span <= f64::EPSILON * hi.abs().max(1.0) {
        return (lo, lo + 1.0, 4);
    }
    // Smallest round step (1, 2, 2.5, 5 times a power of ten) giving at most 5 rings.
    let raw = span / 5.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow);
    let (lo_r, hi_r) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let rings = ((hi_r - lo_r) / step).round();
    if rings.is_finite() && (1.0..=8.0).contains(&rings) {
        (lo_r, hi_r, (rings as usize).max(3))
    } else {
        (lo, hi, 4)
    }
}

/// A radar (spider) chart of a country's components: the human profile and one polygon per
/// method, drawn with pixel primitives.
pub(super) fn radar_svg(
    input: &ReportInput,
    view: &View,
    country: CountryCode,
) -> Result<String, String> {
    let names = view.component_names(country);
    let n = names.len();
    // Series: (label, colour, values); a series with a missing value is left out.
    // (label, colour, values, is human, dashed: coincides with an earlier series).
    let mut series: Vec<(String, RGBColor, Vec<f64>, bool, bool)> = Vec::new();
    let human: Option<Vec<f64>> = names.iter().map(|nm| view.human(country, nm)).collect();
    if let Some(h) = human {
        series.push(("human".to_string(), INK, h, true, false));
    }
    let colors = method_colors(&view.methods);
    for (mi, m) in view.methods.iter().enumerate() {
        let vals: Option<Vec<f64>> = names.iter().map(|nm| view.model(mi, country, nm)).collect();
        if let Some(v) = vals {
            // A series on top of an earlier one would hide it: dashed, and the legend says so.
            let twin = series
                .iter()
                .find(|s| {
                    s.2.len() == v.len() && s.2.iter().zip(&v).all(|(a, b)| (a - b).abs() < 5e-4)
                })
                .map(|s| s.0.clone());
            let label = match &twin {
                Some(t) => format!("{m} (= {t})"),
                None => m.to_string(),
            };
            series.push((label, colors[mi], v, false, twin.is_some()));
        }
    }
    let all: Vec<f64> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    let (lo, hi, rings) = radar_scale(&all);

    let label_size = 13.0;
    let label_w = names
        .iter()
        .map(|s| text_width(s, label_size))
        .max()
        .unwrap_or(0);
    let radius = 180;
    let margin_x = label_w + 24;
    let radar_w = 2 * (radius + margin_x);
    let title_h = 56;
    let margin_y = 44;
    let radar_h = 2 * (radius + margin_y);
    let legend: Vec<(String, Swatch)> = series
        .iter()
        .map(|(l, c, _, _, dashed)| {
            (
                l.clone(),
                if *dashed {
                    Swatch::Dashed(*c)
                } else {
                    Swatch::Line(*c)
                },
            )
        })
        .collect();
    let legend_w = legend_width(&legend) + 20;
    let title = format!("{} — {}: per-dimension profile", input.benchmark, country);
    let subtitle = format!(
        "radial scale {} to {} (centre to outer ring)",
        trim_num(lo),
        trim_num(hi)
    );
    let width = (radar_w + legend_w).max(text_width(&title, 18.0) + 60);
    let height = title_h + radar_h;
    let (cx, cy) = (margin_x + radius, title_h + margin_y + radius);

    let angle =
        |k: usize| -std::f64::consts::FRAC_PI_2 + k as f64 * std::f64::consts::TAU / n as f64;
    let point = |k: usize, frac: f64| {
        let a = angle(k);
        let r = radius as f64 * frac;
        (
            (cx as f64 + r * a.cos()).round() as i32,
            (cy as f64 + r * a.sin()).round() as i32,
        )
    };
    let frac = |v: f64| {
        if v.is_finite() {
            ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };

    let mut buf = String::new();
    {
        let root =
            SVGBackend::with_string(&mut buf, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_title(&root, &title, width)?;
        root.draw(&Text::new(
            subtitle,
            (width / 2, 38),
            text_style(12.0, RGBColor(90, 90, 90), HPos::Center, VPos::Top),
        ))
        .map_err(|e| e.to_string())?;
        // Grid: rings and spokes (polylines, so that polygons are the series only).
        for r in 1..=rings {
            let f = r as f64 / rings as f64;
            let mut ring: Vec<(i32, i32)> = (0..n).map(|k| point(k, f)).collect();
            ring.push(point(0, f));
            let style = if r == rings {
                GRID.stroke_width(2)
            } else {
                GRID.stroke_width(1)
            };
            root.draw(&PathElement::new(ring, style))
                .map_err(|e| e.to_string())?;
        }
        for (k, name) in names.iter().enumerate() {
            root.draw(&PathElement::new(
                vec![(cx, cy), point(k, 1.0)],
                GRID.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            let a = angle(k);
            let (dx, dy) = (a.cos(), a.sin());
            let h = if dx > 0.25 {
                HPos::Left
            } else if dx < -0.25 {
                HPos::Right
            } else {
                HPos::Center
            };
            let v = if dy < -0.5 {
                VPos::Bottom
            } else if dy > 0.5 {
                VPos::Top
            } else {
                VPos::Center
            };
            let lr = radius as f64 + 12.0;
            let pos = (
                (cx as f64 + lr * dx).round() as i32,
                (cy as f64 + lr * dy).round() as i32,
            );
            root.draw(&Text::new(
                name.to_string(),
                pos,
                text_style(label_size, INK, h, v),
            ))
            .map_err(|e| e.to_string())?;
        }
        // Series: one filled polygon each, then its outline and vertex markers.
        for (_, color, vals, human, dashed) in &series {
            let pts: Vec<(i32, i32)> = vals
                .iter()
                .enumerate()
                .map(|(k, v)| point(k, frac(*v)))
                .collect();
            let alpha = if *human { 0.10 } else { 0.14 };
            root.draw(&Polygon::new(pts.clone(), color.mix(alpha).filled()))
                .map_err(|e| e.to_string())?;
            let mut outline = pts.clone();
            if let Some(&first) = pts.first() {
                outline.push(first);
            }
            let width = if *human { 3 } else { 2 };
            if *dashed {
                root.draw(&DashedPathElement::new(
                    outline,
                    7,
                    5,
                    color.stroke_width(width),
                ))
                .map_err(|e| e.to_string())?;
                // Hollow square markers, so the twin's dots stay visible underneath.
                for (x, y) in pts {
                    root.draw(&Rectangle::new(
                        [(x - 4, y - 4), (x + 4, y + 4)],
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?;
                }
            } else {
                root.draw(&PathElement::new(outline, color.stroke_width(width)))
                    .map_err(|e| e.to_string())?;
                for p in pts {
                    root.draw(&Circle::new(p, 3, color.filled()))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        // Ring values halfway between the first two spokes, drawn over the series on a faint
        // white backdrop so they stay readable.
        for r in 1..=rings {
            let f = r as f64 / rings as f64;
            let (a, b) = (point(0, f), point(1, f));
            let label = trim_num(lo + f * (hi - lo));
            let (x, y) = ((a.0 + b.0) / 2 + 3, (a.1 + b.1) / 2);
            let w = text_width(&label, 10.0);
            root.draw(&Rectangle::new(
                [(x - 1, y - 13), (x + w + 1, y - 1)],
                WHITE.mix(0.7).filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Text::new(
                label,
                (x, y),
                text_style(10.0, RGBColor(100, 100, 100), HPos::Left, VPos::Bottom),
            ))
            .map_err(|e| e.to_string())?;
        }
        draw_legend(&root, radar_w + 4, title_h + 20, &legend)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// A short number for axis labels ("0.25", "12.5", "100").
fn trim_num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod color_tests {
    use super::*;
    use crate::{CountryScore, MetricInfo};

    #[test]
    fn method_colours_are_stable_and_distinct() {
        let a = method_colors(&["vanilla", "disca", "palette"]);
        let b = method_colors(&["palette", "disca", "vanilla"]);
        assert_eq!(
            (a[0], a[1], a[2]),
            (b[2], b[1], b[0]),
            "a method keeps its colour whatever the order"
        );
        assert_eq!(a[0], PALETTE[0]);
        let many: Vec<String> = (0..10).map(|k| format!("method-{k}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let cs = method_colors(&refs);
        for i in 0..cs.len() {
            for j in 0..i {
                assert_ne!(cs[i], cs[j], "{i} and {j} share a colour");
            }
        }
    }

    #[test]
    fn coinciding_radar_series_are_dashed_and_named() {
        let usa = CountryCode::new("USA").unwrap();
        let comps = |shift: f64| -> Vec<crate::Component> {
            (0..6)
                .map(|k| crate::Component {
                    name: format!("d{k}"),
                    model: 0.3 + 0.1 * k as f64 + shift,
                    human: Some(0.5),
                })
                .collect()
        };
        let score = |shift: f64| CountryScore {
            country: usa,
            value: 0.4,
            n_items: 10,
            components: comps(shift),
            secondary: vec![],
        };
        let input = ReportInput {
            benchmark: "multitp".into(),
            metric: MetricInfo {
                name: "MIS",
                lower_is_better: true,
            },
            model: "m".into(),
            methods: vec!["vanilla".into(), "disca".into(), "disca-floor".into()],
            scores: vec![
                ("vanilla".into(), score(0.05)),
                ("disca".into(), score(0.0)),
                ("disca-floor".into(), score(0.0)),
            ],
            floors: vec![],
            floor_label: "uniform".into(),
            bootstrap: vec![],
            same_as_parent: vec![],
        };
        let view = View::new(&input);
        let svg = radar_svg(&input, &view, usa).unwrap();
        assert!(svg.contains("disca-floor (= disca)"), "{svg}");
        assert!(!svg.contains("vanilla (="));
    }
}
