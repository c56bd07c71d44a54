//! `summary.md`: the report's blocks written as Markdown (GitHub tables).

use super::content::{blocks, Align, Block, Span};
use super::{ReportInput, View};

/// The Markdown summary: the blocks separated by blank lines.
pub(super) fn render(input: &ReportInput, view: &View) -> String {
    let mut s = String::new();
    for (k, block) in blocks(input, view).iter().enumerate() {
        if k > 0 {
            s.push('\n');
        }
        write_block(&mut s, block);
    }
    s
}

/// Escapes a name for Markdown (table cells in particular).
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn write_spans(s: &mut String, spans: &[Span]) {
    for span in spans {
        match span {
            Span::Text(t) => s.push_str(t),
            Span::Name(n) => s.push_str(&md(n)),
            Span::Strong(inner) => {
                s.push_str("**");
                write_spans(s, inner);
                s.push_str("**");
            }
            Span::Em(inner) => {
                s.push('*');
                write_spans(s, inner);
                s.push('*');
            }
        }
    }
}

fn write_row(s: &mut String, cells: &[Vec<Span>]) {
    s.push('|');
    for c in cells {
        s.push(' ');
        write_spans(s, c);
        s.push_str(" |");
    }
    s.push('\n');
}

fn write_block(s: &mut String, block: &Block) {
    match block {
        Block::Heading(level, spans) => {
            for _ in 0..*level {
                s.push('#');
            }
            s.push(' ');
            write_spans(s, spans);
            s.push('\n');
        }
        Block::Paragraph(spans) => {
            write_spans(s, spans);
            s.push('\n');
        }
        Block::List(items) => {
            for item in items {
                s.push_str("- ");
                write_spans(s, item);
                s.push('\n');
            }
        }
        Block::Table {
            align,
            header,
            rows,
        } => {
            write_row(s, header);
            s.push('|');
            for a in align {
                s.push_str(match a {
                    Align::Left => "---|",
                    Align::Right => "---:|",
                });
            }
            s.push('\n');
            for row in rows {
                write_row(s, row);
            }
        }
        Block::Plots(files) => {
            for f in files {
                let name = f.strip_prefix("plots/").unwrap_or(f);
                s.push_str(&format!("- [{name}]({f})\n"));
            }
        }
    }
}
