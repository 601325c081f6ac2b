//! One self-contained HTML page: inline CSS, figures as base64 `data:` URIs, no scripts and no
//! external resources.

use crate::summary::Table;
use base64::Engine;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
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

/// A PNG as a `data:image/png;base64,…` URI.
pub fn png_data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// An HTML table. Cells that parse as numbers are right-aligned.
pub fn table(t: &Table) -> String {
    let mut s = String::from("<div class=\"scroll\"><table>\n<thead><tr>");
    for h in &t.header {
        s.push_str(&format!("<th>{}</th>", escape(h)));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for r in &t.rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let num = i > 0 && c.parse::<f64>().is_ok();
            s.push_str(&format!(
                "<td{}>{}</td>",
                if num { " class=\"num\"" } else { "" },
                escape(c)
            ));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table></div>\n");
    s
}

/// A figure: the PNG inline with a caption.
pub fn figure(png: &[u8], alt: &str, caption: &str) -> String {
    format!(
        "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
        png_data_uri(png),
        escape(alt),
        escape(caption)
    )
}

/// A note saying why a section is empty or partial.
pub fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>\n", escape(text))
}

/// Preformatted text (configs), with a heading naming its file.
pub fn pre(title: &str, text: &str) -> String {
    format!("<h3>{}</h3>\n<pre>{}</pre>\n", escape(title), escape(text))
}

/// One section of the page: an `id` for the table of contents, a heading and HTML body.
#[derive(Debug, Clone)]
pub struct Section {
    pub id: String,
    pub title: String,
    pub body: String,
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;\
padding:0 1em;color:#222}h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 10px}th{background:#f3f3f3}\
td.num{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1em 0}img{max-width:100%;height:auto;\
image-rendering:pixelated;border:1px solid #ddd}figcaption{color:#555;font-size:.95em;margin-top:.3em}\
.note{color:#8a5a00;background:#fff8e6;border-left:4px solid #e0a800;padding:.4em .8em}\
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.9em}.meta{color:#666}nav a{margin-right:1em}.scroll{overflow-x:auto;max-width:100%}details{margin:1em 0}summary{cursor:pointer;color:#245}";

/// The whole page.
pub fn page(title: &str, meta: &str, sections: &[Section]) -> String {
    let mut s =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    s.push_str(&format!(
        "<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n",
        escape(title),
        STYLE
    ));
    s.push_str(&format!(
        "<h1>{}</h1>\n<p class=\"meta\">{}</p>\n<nav>",
        escape(title),
        escape(meta)
    ));
    for sec in sections {
        s.push_str(&format!(
            "<a href=\"#{}\">{}</a>",
            escape(&sec.id),
            escape(&sec.title)
        ));
    }
    s.push_str("</nav>\n");
    for sec in sections {
        s.push_str(&format!(
            "<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n",
            escape(&sec.id),
            escape(&sec.title),
            sec.body
        ));
    }
    s.push_str("</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_builds_table() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let t = Table {
            header: vec!["class".into(), "f1".into()],
            rows: vec![vec!["<b>".into(), "0.5".into()]],
        };
        let h = table(&t);
        assert!(h.contains("<th>f1</th>"));
        assert!(h.contains("<td>&lt;b&gt;</td><td class=\"num\">0.5</td>"));
    }

    #[test]
    fn page_is_self_contained() {
        let fig = figure(b"\x89PNG", "a", "cap");
        assert!(fig.contains("src=\"data:image/png;base64,iVBORw==\""));
        let p = page(
            "Run",
            "meta",
            &[Section {
                id: "f".into(),
                title: "Figures".into(),
                body: fig,
            }],
        );
        assert!(p.starts_with("<!DOCTYPE html>"));
        assert!(p.contains("<a href=\"#f\">Figures</a>"));
        assert!(!p.contains("<script") && !p.contains("http://") && !p.contains("https://"));
    }
}
