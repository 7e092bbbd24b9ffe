//! A small hand-rolled SVG writer: line charts (latency CDFs, log x) and
//! horizontal bar charts (figures per server, measured/target ratios).
//! No dependency, readable output, self-contained files.

use std::fmt::Write;

/// Colours per series, in order (colour-blind friendly).
pub const PALETTE: [&str; 6] = [
    "#0072b2", "#e69f00", "#009e73", "#7f7f7f", "#cc79a7", "#d55e00",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn header(w: f64, h: f64, title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>
"#,
        w / 2.0,
        esc(title)
    );
    s
}

/// One line series: label and (x, y) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A CDF chart with a log-scale x axis (`x_label`, e.g. µs) and y in 0..=1.
pub fn cdf_chart(title: &str, x_label: &str, series: &[Series]) -> String {
    let (w, h) = (720.0, 420.0);
    let (left, right, top, bottom) = (60.0, 170.0, 40.0, 50.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| *x > 0.0);
    let (mut lo, mut hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    if lo >= hi {
        lo = 1.0;
        hi = 10.0;
    }
    let (llo, lhi) = (lo.log10().floor(), hi.log10().ceil());
    let sx = |x: f64| left + (x.max(1e-9).log10() - llo) / (lhi - llo) * pw;
    let sy = |y: f64| top + (1.0 - y) * ph;
    let mut s = header(w, h, title);
    // Grid: decades on x, quartiles on y.
    let mut d = llo;
    while d <= lhi {
        let x = sx(10f64.powf(d));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 16.0,
            fmt_num(10f64.powf(d))
        );
        d += 1.0;
    }
    for q in [0.0, 0.25, 0.5, 0.75, 0.9, 1.0] {
        let y = sy(q);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{q}</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">fraction of events</text>"##,
        left + pw / 2.0,
        h - 12.0,
        esc(x_label),
        top + ph / 2.0,
        top + ph / 2.0
    );
    for (i, ser) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut path = String::new();
        for (j, (x, y)) in ser.points.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1},{:.1}",
                if j == 0 { "M" } else { " L" },
                sx(*x),
                sy(*y)
            );
        }
        let _ = writeln!(
            s,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        );
        let ly = top + 10.0 + i as f64 * 20.0;
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
            left + pw + 10.0,
            left + pw + 30.0,
            left + pw + 36.0,
            ly + 4.0,
            esc(&ser.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Downsample sorted samples into CDF points (at most ~400).
pub fn cdf_points(sorted: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = (n / 400).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n)
        .step_by(step)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64))
        .collect();
    pts.push((sorted[n - 1], 1.0));
    pts
}

/// One horizontal bar.
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Text at the end of the bar.
    pub text: String,
    /// Colour override (e.g. green met / red missed).
    pub colour: Option<&'static str>,
}

/// A horizontal bar chart, linear scale from 0; `reference` draws a dashed
/// vertical line (e.g. 1.0 = the target).
pub fn bar_chart(title: &str, unit: &str, bars: &[Bar], reference: Option<(f64, &str)>) -> String {
    let row = 26.0;
    let (left, right, top, bottom) = (230.0, 120.0, 40.0, 40.0);
    let w = 760.0;
    let h = top + bottom + row * bars.len() as f64;
    let pw = w - left - right;
    let mut max = bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if let Some((r, _)) = reference {
        max = max.max(r * 1.1);
    }
    if max <= 0.0 {
        max = 1.0;
    }
    let sx = |v: f64| left + v.max(0.0) / max * pw;
    let mut s = header(w, h, title);
    for (i, b) in bars.iter().enumerate() {
        let y = top + i as f64 * row;
        let colour = b.colour.unwrap_or(PALETTE[i % PALETTE.len()]);
        let width = if b.value.is_finite() {
            sx(b.value) - left
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{:.1}" width="{width:.1}" height="{}" fill="{colour}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            left - 8.0,
            y + row / 2.0 + 4.0,
            esc(&b.label),
            y + 4.0,
            row - 8.0,
            left + width + 6.0,
            y + row / 2.0 + 4.0,
            esc(&b.text)
        );
    }
    if let Some((r, label)) = reference {
        let x = sx(r);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#c00" stroke-dasharray="4 3"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#c00">{}</text>"##,
            top - 4.0,
            h - bottom + 4.0,
            h - bottom + 18.0,
            esc(label)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 6.0,
        esc(unit)
    );
    s.push_str("</svg>\n");
    s
}

fn fmt_num(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else {
        format!("{v}")
    }
}
