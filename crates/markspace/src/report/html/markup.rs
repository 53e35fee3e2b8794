//! The one way text reaches the page: [`html!`] writes a literal template whose `{}` holes
//! only take [`Markup`] values, numbers or strings escaped by [`Esc`].
//!
//! Hand-written instead of a template crate: the pages are a few hundred lines of markup, and
//! this keeps the build free of proc-macro template engines while making an unescaped string a
//! compile error rather than a review item. `&str` and `String` do not implement [`Markup`], so
//! `html!(h, "<p>{}</p>", name)` does not build; `html!(h, "<p>{}</p>", Esc(name))` does. The
//! template is passed through `concat!`, which makes `format_args!` refuse implicit captures
//! (`"{name}"`), the other way a raw string could slip in.

use std::fmt;

/// A value that is safe to write into HTML as it is: markup by construction.
pub(crate) trait Markup {
    /// Writes the value's markup.
    fn fmt_markup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// Text from the input (file names, rule text, comments, owner ids), escaped for HTML text and
/// for attribute values in double or single quotes. Control characters are shown as `\x1b`
/// (as [`super::super::escape_controls`] does for terminals) since HTML cannot carry them.
pub(crate) struct Esc<'a>(pub(crate) &'a str);

impl Markup for Esc<'_> {
    fn fmt_markup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = super::super::escape_controls(self.0);
        let mut rest: &str = &text;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// A mark value as the reports print it (`0x00004000`).
pub(crate) struct Hex(pub(crate) u32);

impl Markup for Hex {
    fn fmt_markup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// Markup this module's callers built with [`html!`] (a nested fragment).
pub(crate) struct Fragment(Html);

impl Markup for Fragment {
    fn fmt_markup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.out)
    }
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        impl Markup for $t {
            fn fmt_markup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    )*};
}
numbers!(u8, u16, u32, u64, usize, i32, i64);

impl<T: Markup + ?Sized> Markup for &T {
    fn fmt_markup(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt_markup(f)
    }
}

/// Shows a [`Markup`] value through `Display` (what `format_args!` takes).
pub(crate) struct Show<'a, T: Markup + ?Sized>(pub(crate) &'a T);

impl<T: Markup + ?Sized> fmt::Display for Show<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_markup(f)
    }
}

/// A page or fragment being written. Invariant: everything in it came through [`html!`].
#[derive(Default)]
pub(crate) struct Html {
    out: String,
}

impl Html {
    /// An empty buffer.
    pub(crate) fn new() -> Html {
        Html::default()
    }

    /// What [`html!`] calls; not for other callers.
    #[doc(hidden)]
    pub(crate) fn write_fmt(&mut self, args: fmt::Arguments<'_>) {
        let _ = fmt::Write::write_fmt(&mut self.out, args);
    }

    /// The buffer as a fragment to nest in another template.
    pub(crate) fn fragment(self) -> Fragment {
        Fragment(self)
    }

    /// The finished markup.
    pub(crate) fn into_string(self) -> String {
        self.out
    }
}

/// `html!(buffer, "literal {} template", markup...)`: writes the template with each hole
/// filled by a [`Markup`] value.
macro_rules! html {
    ($out:expr, $tpl:literal $(, $arg:expr)* $(,)?) => {
        $out.write_fmt(format_args!(
            concat!($tpl),
            $($crate::report::html::markup::Show(&$arg)),*
        ))
    };
}
pub(crate) use html;

#[cfg(test)]
mod tests {
    use super::*;

    fn render(s: &str) -> String {
        let mut h = Html::new();
        html!(h, "<p title=\"{}\">{}</p>", Esc(s), Esc(s));
        h.into_string()
    }

    #[test]
    fn escapes_markup_quotes_and_controls() {
        let out = render("</p><script>alert('x')</script>&\"\x1b]8;;\x07");
        assert_eq!(
            out,
            "<p title=\"&lt;/p&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\x1b]8;;\\x07\">\
             &lt;/p&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\x1b]8;;\\x07</p>"
        );
    }

    #[test]
    fn leaves_plain_text_and_unicode_alone() {
        assert_eq!(
            render("KUBE-MARK-MASQ → ✓"),
            "<p title=\"KUBE-MARK-MASQ → ✓\">KUBE-MARK-MASQ → ✓</p>"
        );
    }

    #[test]
    fn nests_fragments_and_numbers() {
        let mut inner = Html::new();
        html!(inner, "<b>{}</b>", Esc("<x>"));
        let mut h = Html::new();
        html!(h, "<i>{} {} {}</i>", inner.fragment(), 7u32, Hex(0x4000));
        assert_eq!(h.into_string(), "<i><b>&lt;x&gt;</b> 7 0x00004000</i>");
    }
}
