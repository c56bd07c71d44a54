//! `report.html`: the report's blocks as one self-contained page.
//!
//! The page carries everything it shows: the tables, the verdicts and diagnostics as HTML, the
//! plots as inline SVG, a short inline style sheet. It loads nothing (no scripts, fonts, images
//! or links to other files), so it can be mailed or archived on its own.

use super::content::{blocks, Align, Block, Span};
use super::{ReportInput, View};

const STYLE: &str = "\
body{margin:0;background:#fff;color:#212121;font:15px/1.5 sans-serif}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:1.6em;margin:.4em 0}
h2{font-size:1.3em;margin:1.4em 0 .5em;border-bottom:1px solid #ddd}
h3{font-size:1.1em;margin:1.2em 0 .4em}
.scroll{overflow-x:auto}
table{border-collapse:collapse;margin:.5em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;white-space:nowrap}
th{background:#f3f3f3}
.r{text-align:right}
tbody tr:nth-child(even){background:#fafafa}
figure{margin:1em 0;overflow-x:auto}
figure svg{display:block;border:1px solid #eee}
figcaption{color:#666;font-size:.9em}
";

/// Escapes text for HTML element content and attribute values.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page: the same blocks as `summary.md`; `plots` holds (relative path, SVG text) of every
/// plot, which replaces the Markdown's links to the plot files.
pub(super) fn render(input: &ReportInput, view: &View, plots: &[(String, String)]) -> String {
    let title = format!("{} — {}", input.benchmark, input.metric.name);
    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    s.push_str(&format!("<title>{}</title>\n", escape(&title)));
    s.push_str("<style>\n");
    s.push_str(STYLE);
    s.push_str("</style>\n</head>\n<body>\n<main>\n");
    for block in blocks(input, view) {
        write_block(&mut s, &block, plots);
    }
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

fn write_spans(s: &mut String, spans: &[Span]) {
    for span in spans {
        match span {
            Span::Text(t) | Span::Name(t) => s.push_str(&escape(t)),
            Span::Strong(inner) => {
                s.push_str("<strong>");
                write_spans(s, inner);
                s.push_str("</strong>");
            }
            Span::Em(inner) => {
                s.push_str("<em>");
                write_spans(s, inner);
                s.push_str("</em>");
            }
        }
    }
}

fn write_row(s: &mut String, tag: &str, cells: &[Vec<Span>], align: &[Align]) {
    s.push_str("<tr>");
    for (k, c) in cells.iter().enumerate() {
        if align.get(k) == Some(&Align::Right) {
            s.push_str(&format!("<{tag} class=\"r\">"));
        } else {
            s.push_str(&format!("<{tag}>"));
        }
        write_spans(s, c);
        s.push_str(&format!("</{tag}>"));
    }
    s.push_str("</tr>\n");
}

/// An SVG document made fit to sit inside HTML: any XML prologue dropped, and labelled for
/// screen readers.
fn inline_svg(svg: &str, label: &str) -> String {
    let body = match svg.find("<svg") {
        Some(k) => &svg[k..],
        None => svg,
    };
    body.trim_end().replacen(
        "<svg",
        &format!("<svg role=\"img\" aria-label=\"{}\"", escape(label)),
        1,
    )
}

fn write_block(s: &mut String, block: &Block, plots: &[(String, String)]) {
    match block {
        Block::Heading(level, spans) => {
            s.push_str(&format!("<h{level}>"));
            write_spans(s, spans);
            s.push_str(&format!("</h{level}>\n"));
        }
        Block::Paragraph(spans) => {
            s.push_str("<p>");
            write_spans(s, spans);
            s.push_str("</p>\n");
        }
        Block::List(items) => {
            if items.is_empty() {
                return;
            }
            s.push_str("<ul>\n");
            for item in items {
                s.push_str("<li>");
                write_spans(s, item);
                s.push_str("</li>\n");
            }
            s.push_str("</ul>\n");
        }
        Block::Table {
            align,
            header,
            rows,
        } => {
            s.push_str("<div class=\"scroll\"><table>\n<thead>\n");
            write_row(s, "th", header, align);
            s.push_str("</thead>\n<tbody>\n");
            for row in rows {
                write_row(s, "td", row, align);
            }
            s.push_str("</tbody>\n</table></div>\n");
        }
        Block::Plots(files) => {
            for f in files {
                let Some((_, svg)) = plots.iter().find(|(p, _)| p == f) else {
                    continue;
                };
                s.push_str("<figure>\n");
                s.push_str(&inline_svg(svg, f));
                s.push_str(&format!(
                    "\n<figcaption>{}</figcaption>\n</figure>\n",
                    escape(f)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<b>"a" & 'b'</b>"#),
            "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn svg_prologue_is_dropped_and_labelled() {
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\"><rect/></svg>\n";
        assert_eq!(
            inline_svg(svg, "plots/a&b.svg"),
            "<svg role=\"img\" aria-label=\"plots/a&amp;b.svg\" width=\"10\" height=\"10\"><rect/></svg>"
        );
    }
}
