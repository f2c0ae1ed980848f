//! The report as a small document model, and its two renderings: Markdown (pastes into a
//! postmortem) and self-contained HTML (inline SVG and CSS, no external fetch). Every string is
//! escaped for the format it lands in: text that came from a capture or a file name is never
//! markup.

/// A run of inline content.
#[derive(Clone, Debug, PartialEq)]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// Emphasised text.
    Strong(String),
    /// Code: a filter, a command, a sysctl.
    Code(String),
}

/// A block of content.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A paragraph.
    Paragraph(Vec<Inline>),
    /// A bulleted list; each item a run of inlines.
    List(Vec<Vec<Inline>>),
    /// A table: header cells, then rows of cells (plain text).
    Table {
        /// Column titles.
        header: Vec<String>,
        /// Rows.
        rows: Vec<Vec<String>>,
    },
    /// A chart, by its file name under `charts/`.
    Chart {
        /// File name under `charts/`.
        file_name: String,
        /// Caption.
        title: String,
    },
    /// Preformatted text (a packet ladder).
    Preformatted(String),
}

/// A titled section.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Content.
    pub blocks: Vec<Block>,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Title.
    pub title: String,
    /// One line under the title (tool version, inputs).
    pub subtitle: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

/// Escapes text for Markdown so that it renders as itself and never as markup: characters
/// that can open markup anywhere are backslash-escaped (`_` only where it could emphasise:
/// not between two letters or digits, CommonMark's intraword rule); a leading `#`, `+`, `-`,
/// `=` or `1.` would start a block and is escaped too; line breaks become spaces. Dots and
/// dashes elsewhere stay readable (`10.0.0.1`, `TIME_WAIT`).
pub fn escape_markdown(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let leading_digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    for (i, &c) in chars.iter().enumerate() {
        let alnum = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        let escape = match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!' => true,
            '_' => !(alnum(i.checked_sub(1)) && alnum(Some(i + 1))),
            '#' | '+' | '-' | '=' => i == 0,
            // An ordered-list marker: 1–9 digits, then `.` or `)`, then a space or the end.
            '.' | ')' => {
                i > 0 && i == leading_digits && chars.get(i + 1).is_none_or(|c| c.is_whitespace())
            }
            _ => false,
        };
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c => {
                if escape {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Inline code in Markdown: a backtick fence longer than any run inside.
fn markdown_code(code: &str) -> String {
    let code: String = code
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let longest_run = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    // CommonMark strips one space on each side: pad only when the code touches a backtick.
    if code.starts_with('`') || code.ends_with('`') {
        format!("{fence} {code} {fence}")
    } else {
        format!("{fence}{code}{fence}")
    }
}

fn markdown_inlines(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|inline| match inline {
            Inline::Text(t) => escape_markdown(t),
            // Emphasis delimiters must touch the text (CommonMark flanking rules): spaces
            // go outside them.
            Inline::Strong(t) => {
                let trimmed = t.trim();
                let lead = &t[..t.len() - t.trim_start().len()];
                let trail = &t[t.trim_end().len()..];
                format!("{lead}**{}**{trail}", escape_markdown(trimmed))
            }
            Inline::Code(c) => markdown_code(c),
        })
        .collect()
}

/// Renders the document as GitHub-flavoured Markdown; charts are linked from `charts/`.
pub fn render_markdown(doc: &Document) -> String {
    let mut out = format!(
        "# {}\n\n{}\n",
        escape_markdown(&doc.title),
        escape_markdown(&doc.subtitle)
    );
    for section in &doc.sections {
        out.push_str(&format!("\n## {}\n", escape_markdown(&section.title)));
        for block in &section.blocks {
            out.push('\n');
            match block {
                Block::Paragraph(inlines) => {
                    out.push_str(&markdown_inlines(inlines));
                    out.push('\n');
                }
                Block::List(items) => {
                    for item in items {
                        out.push_str(&format!("- {}\n", markdown_inlines(item)));
                    }
                }
                Block::Table { header, rows } => {
                    let row = |cells: &[String]| {
                        let cells: Vec<String> = cells.iter().map(|c| escape_markdown(c)).collect();
                        format!("| {} |\n", cells.join(" | "))
                    };
                    out.push_str(&row(header));
                    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
                    for r in rows {
                        out.push_str(&row(r));
                    }
                }
                Block::Chart { file_name, title } => {
                    out.push_str(&format!(
                        "![{}](charts/{})\n",
                        escape_markdown(title),
                        file_name
                            .chars()
                            .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                            .collect::<String>()
                    ));
                }
                Block::Preformatted(text) => {
                    // No terminal escapes; a fence longer than any backtick run inside keeps
                    // the block closed.
                    let text: String = text
                        .chars()
                        .map(|c| {
                            if c.is_control() && c != '\n' {
                                '\u{fffd}'
                            } else {
                                c
                            }
                        })
                        .collect();
                    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
                    let fence = "`".repeat(longest.max(2) + 1);
                    out.push_str(&format!("{fence}text\n{text}\n{fence}\n"));
                }
            }
        }
    }
    out
}

const STYLE: &str = "\
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#1d1d1f}\
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
.subtitle{color:#666;margin-top:0}table{border-collapse:collapse;margin:.8em 0;font-size:.92em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}\
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}\
pre{background:#f7f7f7;border:1px solid #e2e2e2;padding:.6em;overflow-x:auto}\
.scroll{overflow-x:auto;max-width:100%}code{overflow-wrap:anywhere}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;font-size:.9em}";

/// Renders the document as one self-contained HTML page: `charts` (file name, SVG) are
/// inlined where the document places them.
pub fn render_html(doc: &Document, charts: &[(String, String)]) -> String {
    let inlines = |inlines: &[Inline]| -> String {
        inlines
            .iter()
            .map(|inline| match inline {
                Inline::Text(t) => escape_html(t),
                Inline::Strong(t) => format!("<strong>{}</strong>", escape_html(t)),
                Inline::Code(c) => format!("<code>{}</code>", escape_html(c)),
            })
            .collect()
    };
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p class=\"subtitle\">{}</p>\n",
        escape_html(&doc.title),
        escape_html(&doc.title),
        escape_html(&doc.subtitle)
    );
    for section in &doc.sections {
        out.push_str(&format!("<h2>{}</h2>\n", escape_html(&section.title)));
        for block in &section.blocks {
            match block {
                Block::Paragraph(content) => {
                    out.push_str(&format!("<p>{}</p>\n", inlines(content)))
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    for item in items {
                        out.push_str(&format!("<li>{}</li>\n", inlines(item)));
                    }
                    out.push_str("</ul>\n");
                }
                Block::Table { header, rows } => {
                    // A wide table scrolls inside its box (on a phone, beside a 1,400 px
                    // ladder), not the page.
                    out.push_str("<div class=\"scroll\"><table>\n<tr>");
                    for h in header {
                        out.push_str(&format!("<th>{}</th>", escape_html(h)));
                    }
                    out.push_str("</tr>\n");
                    for row in rows {
                        out.push_str("<tr>");
                        for cell in row {
                            out.push_str(&format!("<td>{}</td>", escape_html(cell)));
                        }
                        out.push_str("</tr>\n");
                    }
                    out.push_str("</table></div>\n");
                }
                Block::Chart { file_name, title } => {
                    let svg = charts
                        .iter()
                        .find(|(name, _)| name == file_name)
                        .map(|(_, svg)| strip_xml_declaration(svg))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
                        escape_html(title)
                    ));
                }
                Block::Preformatted(text) => {
                    out.push_str(&format!("<pre>{}</pre>\n", escape_html(text)));
                }
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// An SVG document inlined in HTML must not carry its XML declaration.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping_keeps_addresses_and_names_readable() {
        assert_eq!(
            escape_markdown("10.0.0.1:80 TIME_WAIT 4-tuple"),
            "10.0.0.1:80 TIME_WAIT 4-tuple"
        );
        assert_eq!(escape_markdown("_x_ *y*"), "\\_x\\_ \\*y\\*");
        assert_eq!(escape_markdown("1. item"), "1\\. item");
        assert_eq!(escape_markdown("- item"), "\\- item");
        assert_eq!(escape_markdown("# title"), "\\# title");
    }

    const HOSTILE: &str =
        "<script>alert(1)</script> [x](javascript:alert(1)) **b** `c` |t| \x1b[31m & \"q\" 'a'";

    fn hostile_document() -> Document {
        Document {
            title: HOSTILE.into(),
            subtitle: HOSTILE.into(),
            sections: vec![Section {
                title: HOSTILE.into(),
                blocks: vec![
                    Block::Paragraph(vec![
                        Inline::Text(HOSTILE.into()),
                        Inline::Strong(HOSTILE.into()),
                        Inline::Code(HOSTILE.into()),
                    ]),
                    Block::List(vec![vec![Inline::Text(HOSTILE.into())]]),
                    Block::Table {
                        header: vec![HOSTILE.into()],
                        rows: vec![vec![HOSTILE.into()]],
                    },
                    Block::Preformatted(format!("{HOSTILE}\n```\nbreakout")),
                    Block::Chart {
                        file_name: "../../etc/passwd\"><script>".into(),
                        title: HOSTILE.into(),
                    },
                ],
            }],
        }
    }

    /// Wide content scrolls inside its own box, never the page: every table sits in a
    /// scrolling box, preformatted ladders scroll, and long filters may break anywhere.
    #[test]
    fn wide_tables_and_ladders_scroll_inside_their_box() {
        let html = render_html(&hostile_document(), &[]);
        let tables = html.matches("<table>").count();
        assert!(tables > 0);
        assert_eq!(
            html.matches("<div class=\"scroll\"><table>").count(),
            tables
        );
        assert_eq!(html.matches("</table></div>").count(), tables);
        for rule in [
            ".scroll{overflow-x:auto",
            "pre{background:#f7f7f7;border:1px solid #e2e2e2;padding:.6em;overflow-x:auto}",
            "code{overflow-wrap:anywhere}",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        ] {
            assert!(html.contains(rule), "{rule}");
        }
    }

    #[test]
    fn hostile_strings_never_become_html_markup() {
        let html = render_html(&hostile_document(), &[]);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("\x1b"));
        assert!(!html.contains("'a'"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // Only the page's own elements: every '<' opens a known tag.
        for tag in html.split('<').skip(1) {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                .collect();
            assert!(
                [
                    "!DOCTYPE",
                    "html",
                    "div",
                    "head",
                    "meta",
                    "title",
                    "style",
                    "body",
                    "h1",
                    "h2",
                    "p",
                    "strong",
                    "code",
                    "ul",
                    "li",
                    "table",
                    "tr",
                    "th",
                    "td",
                    "pre",
                    "figure",
                    "figcaption"
                ]
                .contains(&name.as_str()),
                "unexpected tag <{name}"
            );
        }
    }

    #[test]
    fn hostile_strings_never_become_markdown_markup() {
        let mut doc = hostile_document();
        let md = render_markdown(&doc);
        assert!(!md.contains("\x1b"));
        assert!(md.contains("(charts/....etcpasswdscript)"));
        // Code keeps its text, inside a fence longer than any backtick run in it.
        assert!(md.contains("``<script>alert(1)</script> [x](javascript:alert(1)) **b** `c`"));
        assert!(md.contains("````text\n"));
        // Outside code, nothing is markup.
        doc.sections[0]
            .blocks
            .retain(|b| !matches!(b, Block::Preformatted(_)));
        doc.sections[0].blocks[0] = Block::Paragraph(vec![
            Inline::Text(HOSTILE.into()),
            Inline::Strong(HOSTILE.into()),
        ]);
        let md = render_markdown(&doc);
        assert!(!md.contains("[x](javascript"));
        assert!(!md.contains("<script>"));
        assert!(md.contains("\\[x\\](javascript:alert(1))"));
        assert!(md.contains("\\<script\\>"));
    }

    #[test]
    fn markdown_tables_escape_pipes() {
        let md = render_markdown(&Document {
            title: "t".into(),
            subtitle: String::new(),
            sections: vec![Section {
                title: "s".into(),
                blocks: vec![Block::Table {
                    header: vec!["a".into(), "b".into()],
                    rows: vec![vec!["x|y".into(), "1,234".into()]],
                }],
            }],
        });
        assert!(
            md.contains("| a | b |\n|---|---|\n| x\\|y | 1,234 |\n"),
            "{md}"
        );
    }
}
