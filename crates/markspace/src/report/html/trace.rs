//! The trace page: the packet, then each path as a flow through the hooks.

use crate::report::InputReport;
use crate::trace::Trace;

use super::flow;
use super::markup::{html, Esc, Hex, Html};

/// Renders a trace as one self-contained HTML page, with the inputs it walked.
pub fn render(t: &Trace, inputs: &[InputReport]) -> String {
    let mut h = Html::new();
    let p = &t.packet;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "any".into());
    html!(
        h,
        "<header><h1>markspace trace</h1>\n<p class=\"summary\">{} path(s){}</p></header>\n\
         <section id=\"packet\"><h2>Packet</h2><table><tbody>\n\
         <tr><th>path</th><td>{}</td><th>state</th><td>{}</td></tr>\n\
         <tr><th>in</th><td>{}</td><th>out</th><td>{}</td></tr>\n\
         <tr><th>source</th><td>{}</td><th>destination</th><td>{}</td></tr>\n\
         <tr><th>protocol</th><td>{}</td><th>ports</th><td>{} → {}</td></tr>\n\
         <tr><th>mark</th><td><code>{}</code></td><th>ctmark</th><td><code>{}</code></td></tr>\n\
         </tbody></table></section>\n",
        t.paths.len(),
        Esc(if t.truncated {
            " (path limit reached: some undecided conditions taken as not matching)"
        } else {
            ""
        }),
        Esc(&format!("{:?}", p.path).to_lowercase()),
        Esc(&format!("{:?}", p.state).to_lowercase()),
        Esc(&opt(p.in_iface.clone())),
        Esc(&opt(p.out_iface.clone())),
        Esc(&opt(p.src.map(|a| a.to_string()))),
        Esc(&opt(p.dst.map(|a| a.to_string()))),
        Esc(&opt(p.proto.map(|n| n.to_string()))),
        Esc(&opt(p.sport.map(|n| n.to_string()))),
        Esc(&opt(p.dport.map(|n| n.to_string()))),
        Hex(t.start.mark),
        Hex(t.start.ctmark)
    );
    let start = (
        crate::model::hex(t.start.mark),
        crate::model::hex(t.start.ctmark),
    );
    for (i, path) in t.paths.iter().enumerate() {
        html!(
            h,
            "<section class=\"path\" id=\"path-{}\" data-verdict=\"{}\"><h2>Path {} → {}</h2>\n",
            i + 1,
            Esc(&path.verdict),
            i + 1,
            Esc(&path.verdict)
        );
        for a in &path.assumptions {
            html!(h, "<p class=\"summary\">assuming {}</p>\n", Esc(a));
        }
        flow::trace_path(&mut h, path, (&start.0, &start.1));
        html!(h, "</section>\n");
    }
    super::inputs(&mut h, inputs);
    html!(
        h,
        "<footer>markspace {}</footer>\n",
        Esc(env!("CARGO_PKG_VERSION"))
    );
    super::page("markspace trace", h.fragment())
}
