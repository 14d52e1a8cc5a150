//! Plain SVG line charts for the benchmark reports (no plotting library):
//! one panel per chart, a few series each, axes with round ticks.

use std::fmt::Write as _;

/// One line of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// One panel.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// A "nice" step for about 5 ticks up to `max`.
fn step(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    mag * if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn panel(out: &mut String, c: &Chart<'_>, y0: f64) {
    let pts = c.series.iter().flat_map(|s| s.points.iter());
    let (mut xmax, mut ymax) = (1.0f64, 1.0f64);
    for &(x, y) in pts {
        xmax = xmax.max(x);
        ymax = ymax.max(y);
    }
    let (xs, ys) = (step(xmax), step(ymax));
    let (xmax, ymax) = ((xmax / xs).ceil() * xs, (ymax / ys).ceil() * ys);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / xmax * pw;
    let py = |y: f64| y0 + TOP + ph - y / ymax * ph;
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"14\" font-weight=\"bold\">{}</text>",
        LEFT,
        y0 + 18.0,
        esc(c.title)
    );
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#888\"/>",
        y0 + TOP
    );
    let mut t = 0.0;
    while t <= ymax + 1e-9 {
        let y = py(t);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            LEFT + pw,
            LEFT - 4.0,
            y + 3.0,
            t
        );
        t += ys;
    }
    let mut t = 0.0;
    while t <= xmax + 1e-9 {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            px(t),
            y0 + TOP + ph + 14.0,
            t
        );
        t += xs;
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
         <text x=\"14\" y=\"{:.1}\" font-size=\"11\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>",
        LEFT + pw / 2.0,
        y0 + H - 6.0,
        esc(c.x_label),
        y0 + TOP + ph / 2.0,
        y0 + TOP + ph / 2.0,
        esc(c.y_label)
    );
    for (k, s) in c.series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{}\">{}</text>",
            s.color,
            path.join(" "),
            LEFT + pw - 150.0,
            y0 + TOP + 14.0 + 13.0 * k as f64,
            s.color,
            esc(s.name)
        );
    }
}

/// Renders the charts one above the other.
pub fn render(charts: &[Chart<'_>]) -> String {
    let mut out = String::new();
    let total = H * charts.len() as f64;
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{total}\" \
         font-family=\"sans-serif\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    );
    for (k, c) in charts.iter().enumerate() {
        panel(&mut out, c, H * k as f64);
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(step(7.0), 2.0);
        assert_eq!(step(100.0), 20.0);
        assert_eq!(step(4300.0), 1000.0);
        assert_eq!(step(0.0), 1.0);
    }

    #[test]
    fn renders_every_series() {
        let svg = render(&[Chart {
            title: "t <1>",
            x_label: "s",
            y_label: "flows/s",
            series: vec![
                Series {
                    name: "a",
                    color: "red",
                    points: vec![(0.0, 1.0), (1.0, 3.0)],
                },
                Series {
                    name: "b",
                    color: "blue",
                    points: vec![(0.0, 2.0)],
                },
            ],
        }]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("t &lt;1&gt;"));
    }
}
