//! What people paste: shell sessions, `sh -x` traces, Markdown, `git grep` output.
//!
//! A paste is split at every prompt or command line (any shell prompt, `sh -x` `+ ` lines,
//! `kubectl exec … --`, Markdown fences) into sections, each read by its own format. Before
//! that, decorations are removed without moving any line: Markdown backticks and `> ` quotes
//! become spaces, `git grep`/`grep -n` prefixes (`FILE:`, `N:`) become spaces, and a `\`
//! continuation is joined into one line followed by an empty one, so every line keeps its
//! number and most columns stay where the user sees them.
//!
//! Each section's text is the whole input with the lines of other sections left empty: a parser
//! reads it as it reads any text, and its spans and line numbers are those of the paste.

/// One section of a paste.
#[derive(Debug)]
pub(crate) struct Section {
    /// 1-based line where it starts (its prompt line, when it has one).
    pub(crate) line: u32,
    /// The command that printed it, as typed (without the prompt and `sudo`), if any.
    pub(crate) command: Option<String>,
    /// The format its command (or the file a `git grep`/`cat` read) names, if any.
    pub(crate) hint: Option<&'static str>,
    /// The whole input's lines, those outside this section empty.
    pub(crate) text: String,
    /// Whether its command prints files (`git grep`, `cat`): the hint is then the file's name.
    pub(crate) reads_files: bool,
    /// Whether the section holds anything but blank lines and its prompt.
    pub(crate) has_content: bool,
}

/// A text read as a paste.
#[derive(Debug)]
pub(crate) struct Paste {
    /// Its sections in order.
    pub(crate) sections: Vec<Section>,
    /// Whether anything marks it as a paste (a prompt, a fence, a backtick, a `\` continuation,
    /// a `grep` prefix): when not, a text is machine output and read strictly.
    pub(crate) decorated: bool,
}

/// Commands a `#` prompt may run besides the network tools of [`super::text::COMMANDS`] (so
/// that `# a comment` is not a prompt; `$ ` prompts may run anything).
const MORE_TOOLS: &[&str] = &[
    "ovs-vsctl",
    "ip6tables-nft",
    "ip6tables-legacy",
    "ip6tables-nft-save",
    "ip6tables-legacy-save",
    "git",
    "grep",
    "egrep",
    "rg",
    "sudo",
    "sh",
    "bash",
    "cilium",
    "calicoctl",
    "tailscale",
    "uci",
    "mwan3",
];

/// Whether a tool's command line, typed without a prompt, starts a section: the network tools
/// of [`super::text::COMMANDS`] whose output has no line starting with their name.
fn bare_tool(tool: &str) -> bool {
    super::text::COMMANDS.contains(&tool)
        && !matches!(
            tool,
            "cat"
                | "docker"
                | "kubectl"
                | "ss"
                | "sysctl"
                | "conntrack"
                | "bpftool"
                | "ipvsadm"
                | "ovs-appctl"
                | "wg-quick"
        )
}

/// `ip` objects a command line names (`ip rule`, `ip -d link`): `ip saddr` is nft syntax.
const IP_OBJECTS: &[&str] = &[
    "rule", "ru", "route", "r", "ro", "xfrm", "link", "l", "addr", "address", "a", "neigh",
    "netns", "tunnel",
];

/// A prompt-like line: the byte offset of its command and the command.
fn prompt(line: &str) -> Option<(usize, &str)> {
    let lead = line.len() - line.trim_start().len();
    let l = line.trim();
    // sh -x / set -x traces: `+ cmd`, `++ cmd`.
    let plus = l.len() - l.trim_start_matches('+').len();
    if plus > 0 && l[plus..].starts_with(' ') {
        // Every traced command is a boundary (`+ '[' -n 8080, ']'` too).
        let cmd = l[plus..].trim_start();
        return (!cmd.is_empty()).then_some((lead + (l.len() - cmd.len()), cmd));
    }
    // A command typed without a prompt (`iptables -t nat -S`, `ip -f inet rule add …`).
    if let Some(first) = l.split_whitespace().next() {
        let cmd = l.strip_prefix("sudo ").map_or(l, str::trim_start);
        let first = if first == "sudo" {
            cmd.split_whitespace().next().unwrap_or("")
        } else {
            first
        };
        let second = cmd.split_whitespace().nth(1).unwrap_or("");
        // `ip saddr …`, `tc …` words also start nft statements and listings: only commands.
        let command_like = match first {
            "ip" => IP_OBJECTS.contains(&second) || second.starts_with('-'),
            "tc" => matches!(second, "filter" | "qdisc" | "class" | "-s" | "-j" | "-d"),
            "wg" => matches!(second, "show" | "showconf" | "set"),
            _ => {
                second.starts_with('-')
                    || matches!(
                        second,
                        "list" | "add" | "insert" | "dump-flows" | "add-flow"
                    )
            }
        };
        if bare_tool(first) && command_like {
            return Some((lead + (l.len() - cmd.len()), cmd));
        }
    }
    // mwan3's troubleshooting report: `Output of "ip rule show"`.
    if let Some(rest) = l.strip_prefix("Output of \"") {
        if let Some(cmd) = rest.strip_suffix('"') {
            return Some((lead + "Output of \"".len(), cmd));
        }
    }
    // `kubectl exec POD -- cmd` typed without a prompt.
    if l.starts_with("kubectl ") && l.contains(" exec ") {
        if let Some(i) = l.find(" -- ") {
            let cmd = l[i + 4..].trim_start();
            return Some((lead + (l.len() - cmd.len()), cmd));
        }
    }
    let dollar = l.find("$ ");
    let hash = l.find("# ");
    let (cut, is_hash) = match (dollar, hash) {
        (Some(d), Some(h)) if h < d => (h, true),
        (Some(d), _) => (d, false),
        (None, Some(h)) => (h, true),
        (None, None) => return None,
    };
    let prefix = &l[..cut];
    // `root@node:~# k logs …`: a prompt whatever it runs (`# comment` needs a known tool).
    let has_host = prefix.contains('@') || prefix == "/" || prefix.ends_with('/');
    let plausible = prefix.is_empty()
        || has_host
        || (!prefix.contains(char::is_whitespace)
            && !prefix.starts_with('-')
            && !prefix.starts_with('"')
            && (prefix.contains('@')
                || prefix.contains(':')
                || prefix.ends_with('~')
                || prefix.starts_with("sh-")
                || prefix.starts_with("bash-")
                || prefix.ends_with(')')))
        || (prefix.starts_with('[') && prefix.ends_with(']'));
    if !plausible {
        return None;
    }
    let cmd = l[cut + 2..].trim();
    let first = cmd.split_whitespace().next()?;
    let base = first.rsplit('/').next().unwrap_or(first);
    if is_hash && !has_host && !super::text::COMMANDS.contains(&base) && !MORE_TOOLS.contains(&base)
    {
        return None;
    }
    if !is_hash && !first.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '.') {
        return None;
    }
    Some((lead + (l.len() - cmd.len()), cmd))
}

/// The command without `sudo`, `kubectl exec … --`, `docker exec CONTAINER`.
fn effective(cmd: &str) -> &str {
    let mut c = cmd.trim();
    loop {
        if let Some(r) = c.strip_prefix("sudo ") {
            c = r.trim_start();
            continue;
        }
        if c.starts_with("kubectl ") {
            if let Some(i) = c.find(" -- ") {
                c = c[i + 4..].trim_start();
                continue;
            }
        }
        if let Some(r) = c.strip_prefix("docker exec ") {
            // docker exec [-it] CONTAINER cmd
            let mut rest = r.trim_start();
            while rest.starts_with('-') {
                rest = rest.split_once(' ').map_or("", |x| x.1).trim_start();
            }
            c = rest.split_once(' ').map_or("", |x| x.1).trim_start();
            continue;
        }
        return c;
    }
}

/// Whether a command is itself a rule (its line is content, not a prompt).
fn is_rule_command(cmd: &str) -> bool {
    let w: Vec<&str> = cmd.split_whitespace().collect();
    let Some(first) = w.first() else { return false };
    let tool = first.rsplit('/').next().unwrap_or(first);
    if tool.starts_with("iptables") || tool.starts_with("ip6tables") {
        return !tool.ends_with("-save")
            && w.iter()
                .any(|x| matches!(*x, "-A" | "-I" | "-N" | "-P" | "--append" | "--insert"));
    }
    match tool {
        "nft" => w.iter().any(|x| matches!(*x, "add" | "insert" | "create")),
        "ip" => w.contains(&"rule") && w.iter().any(|x| matches!(*x, "add" | "a")),
        "ovs-ofctl" => w.contains(&"add-flow"),
        _ => false,
    }
}

/// Whether a command prints files (`cat`, `grep`, `git grep`) rather than node state.
fn reads_files(cmd: &str) -> bool {
    let first = cmd.split_whitespace().next().unwrap_or("");
    let tool = first.rsplit('/').next().unwrap_or(first);
    matches!(
        tool,
        "git" | "grep" | "egrep" | "rg" | "cat" | "less" | "head" | "tail"
    )
}

/// The format a command names, directly or through the file it reads (`git grep X
/// iptables-save--c.md`, `cat ip-xfrm-policy.md`, a cilium-bugtool name).
pub(crate) fn hint(cmd: &str) -> Option<&'static str> {
    let w: Vec<&str> = cmd.split_whitespace().take_while(|w| *w != "|").collect();
    let first = *w.first()?;
    let tool = first.rsplit('/').next().unwrap_or(first);
    if reads_files(cmd) {
        return w.iter().skip(1).rev().find_map(|f| name_hint(f));
    }
    let has = |x: &str| w.contains(&x);
    if tool.starts_with("iptables") || tool.starts_with("ip6tables") {
        if tool.ends_with("-save") || has("-S") || has("--list-rules") {
            return Some("iptables-save");
        }
        if w.iter()
            .any(|x| x.starts_with('-') && !x.starts_with("--") && x.contains('L'))
            || has("--list")
        {
            return Some("iptables-list");
        }
        return Some("iptables-save");
    }
    match tool {
        "nft" => Some(if has("-j") || has("--json") {
            "nft-json"
        } else {
            "nft-text"
        }),
        "ip" => {
            if has("xfrm") {
                Some("ip-xfrm")
            } else if has("rule") || has("ru") {
                Some(if has("-j") || has("-json") {
                    "ip-rule-json"
                } else {
                    "ip-rule"
                })
            } else if has("link") || has("address") || has("addr") || has("a") {
                Some("ip-link")
            } else {
                None
            }
        }
        "tc" => has("filter").then_some("tc-filter"),
        "wg" => Some("wireguard"),
        "ss" => Some("ss"),
        "sysctl" => Some("sysctl"),
        "conntrack" => Some("conntrack"),
        "ipvsadm" => Some("ipvsadm"),
        "bpftool" => Some("bpftool"),
        "ovs-ofctl" => Some("ovs-flows"),
        _ => None,
    }
}

/// The format a file name names (cilium-bugtool and sosreport names included).
fn name_hint(file: &str) -> Option<&'static str> {
    let f = file.rsplit('/').next().unwrap_or(file).to_ascii_lowercase();
    if f.starts_with('-') {
        return None;
    }
    if f.contains("xfrm") {
        Some("ip-xfrm")
    } else if f.contains("iptables-save") || f.contains("ip6tables-save") || f.contains("_-s") {
        Some("iptables-save")
    } else if f.contains("iptables") && (f.contains("-l") || f.contains("nvl")) {
        Some("iptables-list")
    } else if f.contains("nft") {
        Some("nft-text")
    } else if f.contains("ip-rule") || f.contains("ip_rule") || f.contains("ip-r") {
        Some("ip-rule")
    } else if f.contains("wg") || f.contains("wireguard") {
        Some("wireguard")
    } else if f.contains("tc-filter") || f.contains("tc_filter") {
        Some("tc-filter")
    } else {
        None
    }
}

/// The files a `grep`/`git grep` command searches (its operands after the pattern).
fn grep_files(cmd: &str) -> Option<(Vec<&str>, bool)> {
    let w: Vec<&str> = cmd.split_whitespace().take_while(|w| *w != "|").collect();
    let first = *w.first()?;
    let tool = first.rsplit('/').next().unwrap_or(first);
    let rest: &[&str] = match tool {
        "git" if w.get(1) == Some(&"grep") => &w[2..],
        "grep" | "egrep" | "rg" => &w[1..],
        _ => return None,
    };
    let numbered = rest
        .iter()
        .any(|x| *x == "-n" || (x.starts_with('-') && !x.starts_with("--") && x.contains('n')));
    let operands: Vec<&str> = rest
        .iter()
        .copied()
        .filter(|x| !x.starts_with('-'))
        .skip(1)
        .map(|x| x.trim_matches(|c| c == '\'' || c == '"'))
        .collect();
    Some((operands, numbered))
}

/// The format of a fragment no whole-input detector claims, judged by its first significant
/// line: a bare iptables rule spec (`-m mark --mark 0x4000/0x4000 -j ACCEPT`) or target
/// (`CONNMARK --restore-mark …`), an `iptables -L` rule line without its `Chain` header, an nft
/// chain without its table or a statement on its own (`meta mark set ct mark & 0x80`).
pub(crate) fn fragment_format(text: &str) -> Option<&'static str> {
    for (_, _, line) in crate::source::Lines::new(text).take(200) {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with("$ ") {
            continue;
        }
        let w: Vec<&str> = l.split_whitespace().collect();
        let first = w[0];
        if first.starts_with('-') && first.len() > 1 && !first.starts_with("--") && l.contains(" -")
        {
            return Some("iptables-save");
        }
        if first.starts_with("[")
            && first.ends_with(']')
            && w.get(1).is_some_and(|x| x.starts_with('-'))
        {
            return Some("iptables-save");
        }
        if w.len() > 1
            && w[1].starts_with("--")
            && first.len() > 1
            && first
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_')
        {
            return Some("iptables-save");
        }
        if w.iter().take(6).any(|x| matches!(*x, "--" | "-f" | "!f"))
            && (w.contains(&"anywhere") || w.iter().any(|x| x.contains('/') || x.contains('.')))
        {
            return Some("iptables-list");
        }
        if (first == "chain" && l.ends_with('{'))
            || (first == "table" && l.contains(", chain ") && l.ends_with(':'))
            || l.contains("meta mark")
            || l.contains("ct mark")
            || l.starts_with("mark ")
            || l.contains(" mark set ")
        {
            return Some("nft-text");
        }
        return None;
    }
    None
}

/// A text that starts with prose (`for example, if existing ip rules:`): the first of its first
/// 50 lines from which a format reads it, as the text with the lines before it empty, that
/// line's number and the format.
pub(crate) fn after_prose(text: &str) -> Option<(String, u32, &'static super::Format)> {
    for (n, start, line) in crate::source::Lines::new(text).take(50).skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let rest = &text[start..];
        let format = super::detect(rest).or_else(|| fragment_format(rest).and_then(super::by_name));
        if let Some(format) = format {
            let mut t = "\n".repeat(n as usize - 1);
            t.push_str(rest);
            return Some((t, n, format));
        }
    }
    None
}

/// The padding a terminal leaves where it wrapped a long line (`ss -tanp`/`iptables -S` pasted
/// from a narrow window): columns of `iptables -L` are never this far apart.
const WRAP_PAD: &str = "                                        ";

/// Markdown indented code blocks: a run of lines indented by 4 spaces or more, after a blank
/// line or at the start, loses its common indentation (line numbers stay; the code's own
/// relative indentation, which `ip xfrm` output needs, stays too).
fn dedent_code_blocks(lines: &mut [String]) -> bool {
    let mut changed = false;
    let mut k = 0;
    while k < lines.len() {
        let starts = (k == 0 || lines[k - 1].trim().is_empty()) && lines[k].starts_with("    ");
        if !starts {
            k += 1;
            continue;
        }
        let mut end = k;
        while end < lines.len() && (lines[end].trim().is_empty() || lines[end].starts_with("    "))
        {
            end += 1;
        }
        let indent = lines[k..end]
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start_matches(' ').len())
            .min()
            .unwrap_or(0);
        if indent >= 4 {
            for l in &mut lines[k..end] {
                if l.len() >= indent {
                    l.replace_range(..indent, "");
                } else {
                    l.clear();
                }
            }
            changed = true;
        }
        k = end.max(k + 1);
    }
    changed
}

/// Replaces `[from, to)` of a line with spaces.
fn blank(line: &mut String, from: usize, to: usize) {
    let to = to.min(line.len());
    if from >= to || !line.is_char_boundary(from) || !line.is_char_boundary(to) {
        return;
    }
    line.replace_range(from..to, &" ".repeat(to - from));
}

/// Splits a text into the sections of a paste.
pub(crate) fn split(text: &str) -> Paste {
    let mut lines: Vec<String> = crate::source::Lines::new(text)
        .map(|(_, _, l)| l.to_string())
        .collect();
    let mut decorated = false;
    // `\` continuations: join, keep the line count (the joined line, then an empty one).
    let mut i = 0;
    while i < lines.len() {
        let mut j = i;
        while j + 1 < lines.len() && lines[j].trim_end().ends_with('\\') {
            j += 1;
        }
        if j > i {
            decorated = true;
            let mut joined = String::new();
            for (k, l) in lines[i..=j].iter().enumerate() {
                let l = if k < j - i {
                    let t = l.trim_end();
                    &t[..t.len() - 1]
                } else {
                    l.as_str()
                };
                joined.push_str(l);
                if k < j - i {
                    joined.push(' ');
                }
            }
            lines[i] = joined;
            for l in &mut lines[i + 1..=j] {
                l.clear();
            }
        }
        i = j + 1;
    }
    // Markdown: fences end sections; backticks and `> ` quotes are blanked.
    let mut fence = vec![false; lines.len()];
    for (k, l) in lines.iter_mut().enumerate() {
        let t = l.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fence[k] = true;
            decorated = true;
            l.clear();
            continue;
        }
        // `> ` quotes (and a here-document's `> ` continuation prompt after them).
        loop {
            let t = l.trim_start();
            if !(t.starts_with("> ") || t == ">") {
                break;
            }
            let at = l.len() - t.len();
            blank(l, at, at + 1);
            decorated = true;
        }
        let t = l.trim();
        // Rules under report headers: `-----`, `=====`.
        if t.len() >= 5 && (t.bytes().all(|c| c == b'-') || t.bytes().all(|c| c == b'=')) {
            l.clear();
            decorated = true;
            continue;
        }
        // A line a terminal wrapped and padded (`… -j RETU<80 spaces>RN`): joined again.
        if let Some(at) = l.trim_end().find(WRAP_PAD) {
            let end = at + l[at..].len() - l[at..].trim_start().len();
            if end < l.trim_end().len() {
                l.replace_range(at..end, "");
                decorated = true;
            }
        }
        if l.contains('`') {
            decorated = true;
            *l = l.replace('`', " ");
        }
    }
    decorated |= dedent_code_blocks(&mut lines);
    // Sections.
    let mut sections: Vec<Section> = Vec::new();
    let mut starts: Vec<(usize, Option<(usize, String)>)> = vec![(0, None)];
    for (k, l) in lines.iter().enumerate() {
        if fence[k] {
            starts.push((k, None));
            continue;
        }
        if let Some((at, cmd)) = prompt(l) {
            decorated = true;
            starts.push((k, Some((at, cmd.to_string()))));
        } else if output_boundary(&lines, k) {
            decorated = true;
            starts.push((k, None));
        }
    }
    starts.push((lines.len(), None));
    for w in starts.windows(2) {
        let ((from, ref prompt_at), (to, _)) = (&w[0], &w[1]);
        let (from, to) = (*from, *to);
        if from >= to {
            continue;
        }
        let command = prompt_at.as_ref().map(|(_, c)| effective(c).to_string());
        let grep = command.as_deref().and_then(grep_files);
        let mut body: Vec<String> = lines[from..to].to_vec();
        if let Some((at, cmd)) = prompt_at {
            let eff = effective(cmd);
            let eff_at = at + (cmd.len() - eff.len());
            let first = &mut body[0];
            if reads_files(eff) {
                // `git grep X FILE`, `cat FILE`: the prompt is no context for the format.
                first.clear();
            } else if is_rule_command(eff) && first.is_char_boundary(eff_at.min(first.len())) {
                // The command is a rule: keep it as content, its prompt blanked.
                blank(first, 0, eff_at);
            } else {
                *first = format!("{}$ {}", " ".repeat(eff_at.saturating_sub(2)), eff);
            }
        }
        // `nft -f - <<HERE`: the terminator is no content.
        if let Some(word) = prompt_at
            .as_ref()
            .and_then(|(_, c)| c.split_once("<<"))
            .map(|(_, w)| w.trim().trim_matches(|c| c == '\'' || c == '"' || c == '-'))
            .filter(|w| !w.is_empty())
        {
            for l in body.iter_mut().skip(1) {
                if l.trim() == word {
                    l.clear();
                }
            }
        }
        if let Some((files, numbered)) = &grep {
            for l in body.iter_mut().skip(usize::from(prompt_at.is_some())) {
                let mut cut = 0;
                for f in files {
                    if l.starts_with(f) && l[f.len()..].starts_with([':', '-']) {
                        cut = f.len() + 1;
                        break;
                    }
                }
                if *numbered {
                    let digits = l[cut..].len()
                        - l[cut..]
                            .trim_start_matches(|c: char| c.is_ascii_digit())
                            .len();
                    if digits > 0 && l[cut + digits..].starts_with([':', '-']) {
                        cut += digits + 1;
                    }
                }
                if cut > 0 {
                    blank(l, 0, cut);
                    decorated = true;
                }
            }
        }
        let has_content = body.iter().enumerate().any(|(k, l)| {
            let prompt_line = k == 0 && prompt_at.is_some() && l.trim_start().starts_with("$ ");
            !l.trim().is_empty() && !prompt_line
        });
        let mut t = String::with_capacity(text.len().min(1 << 20));
        for _ in 0..from {
            t.push('\n');
        }
        for l in &body {
            t.push_str(l);
            t.push('\n');
        }
        let hint = command.as_deref().and_then(hint);
        let reads_files = command.as_deref().is_some_and(reads_files);
        sections.push(Section {
            line: from as u32 + 1,
            command,
            hint,
            text: t,
            reads_files,
            has_content,
        });
    }
    Paste {
        sections,
        decorated,
    }
}

/// Whether line `k` starts another command's output right after a whole `iptables-save` table
/// (`COMMIT`, or its `# Completed on` comment) or nft table (a `}` in column 0), with no prompt
/// between them: `(iptables-save; ip rule) > node.txt`. Only checked at those ends, so the
/// detectors run a few times per input, not once per line.
fn output_boundary(lines: &[String], k: usize) -> bool {
    let t = lines[k].trim();
    if t.is_empty() || t.starts_with('#') {
        return false;
    }
    let Some(prev) = lines[..k].iter().rev().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let after_save = prev.trim() == "COMMIT" || prev.trim_start().starts_with("# Completed on");
    let after_nft = prev.trim_end() == "}";
    if !(after_save || after_nft) {
        return false;
    }
    if (after_save && t.starts_with(['*', ':', '-', '[']))
        || (after_nft && (t.starts_with("table ") || t.starts_with("add ")))
    {
        return false;
    }
    let mut rest = String::new();
    for l in lines[k..].iter().take(64) {
        rest.push_str(l);
        rest.push('\n');
    }
    super::detect(&rest).is_some_and(|f| {
        let same = if after_save {
            f.name == "iptables-save"
        } else {
            f.name.starts_with("nft")
        };
        !same
    })
}

/// Random texts of the pieces pastes are made of (prompts, quotes, fences, continuations,
/// wraps, grep prefixes, multi-byte characters), for tests that nothing panics on them.
#[cfg(test)]
pub(crate) fn random_pastes(count: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "$ ",
        "# ",
        "+ ",
        "++ ",
        "> ",
        "```",
        "`",
        "\\",
        "\n",
        "\r\n",
        "    ",
        "\t",
        "git grep x f.md",
        "f.md:",
        "12:",
        "-A X -j MARK --set-xmark 0x1/0x1",
        "iptables -S",
        "ip rule",
        "ip saddr",
        "Output of \"",
        "\"",
        "kubectl exec p -- ",
        "root@h:~# ",
        "é",
        "—",
        "<<EOF",
        "EOF",
        "-----",
        "chain c {",
        "}",
        "0:\tfrom all fwmark 0x1",
        "                                        ",
        "/ # ",
        "meta mark set ct mark & 0x80",
        "CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80",
        "DROP all -- any any anywhere",
        "src 1.2.3.4 dst 5.6.7.8",
        "\tmark 0x9e00/0xff00",
        "wg0\t0xca6c",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count)
        .map(|_| {
            let n = (next() % 40) as usize;
            (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_of_every_kind() {
        assert_eq!(
            prompt("$ sudo iptables -S").map(|p| p.1),
            Some("sudo iptables -S")
        );
        assert_eq!(
            prompt("+ iptables -t mangle -A X").map(|p| p.1),
            Some("iptables -t mangle -A X")
        );
        assert_eq!(prompt("root@node:~# ip rule").map(|p| p.1), Some("ip rule"));
        assert_eq!(prompt("# rules of eth0"), None);
        assert_eq!(prompt("-A X -m comment --comment \"a $ b\""), None);
        assert_eq!(prompt("0:\tfrom all lookup local"), None);
        assert_eq!(
            prompt("kubectl -n kube-system exec cilium-x -- ip xfrm policy").map(|p| p.1),
            Some("ip xfrm policy")
        );
        let (at, cmd) = prompt("$ git grep 0x8000 a.md").unwrap();
        assert_eq!(&"$ git grep 0x8000 a.md"[at..], cmd);
    }

    #[test]
    fn git_grep_sections_keep_lines() {
        let t = "$ git grep 0x8000 iptables-save--c.md\niptables-save--c.md:[1:2] -A KUBE-FIREWALL -j DROP\n$ git grep mark ip-xfrm-policy.md\nip-xfrm-policy.md:     mark 0x9e00/0xff00\n";
        let p = split(t);
        assert!(p.decorated);
        assert_eq!(p.sections.len(), 2);
        assert_eq!(p.sections[0].hint, Some("iptables-save"));
        assert_eq!(p.sections[1].hint, Some("ip-xfrm"));
        let lines: Vec<&str> = p.sections[1].text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[3].trim(), "mark 0x9e00/0xff00");
        assert_eq!(lines[0], "");
        let l0: Vec<&str> = p.sections[0].text.lines().collect();
        assert_eq!(l0[1].trim(), "[1:2] -A KUBE-FIREWALL -j DROP");
    }

    #[test]
    fn continuations_and_fences() {
        let t = "```\n+ iptables -t mangle -A X \\\n   -j MARK --set-xmark 0x1/0x1\n```\n";
        let p = split(t);
        let s: Vec<&Section> = p.sections.iter().filter(|s| s.has_content).collect();
        assert_eq!(s.len(), 1);
        let lines: Vec<&str> = s[0].text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].trim().starts_with("iptables -t mangle -A X"));
        assert!(lines[1].contains("--set-xmark 0x1/0x1"));
        assert_eq!(lines[2], "");
    }

    /// Every section keeps the input's line count (spans and line numbers stay the paste's),
    /// and nothing panics, on random texts of the pieces pastes are made of.
    #[test]
    fn random_pastes_split_without_panics_and_keep_lines() {
        for text in random_pastes(2000) {
            let lines = crate::source::Lines::new(&text).count();
            let paste = split(&text);
            for sec in &paste.sections {
                assert!(
                    crate::source::Lines::new(&sec.text).count() <= lines.max(1),
                    "{text:?}"
                );
            }
            if let Some((t, line, _)) = after_prose(&text) {
                assert!(line >= 2);
                assert_eq!(crate::source::Lines::new(&t).count(), lines, "{text:?}");
            }
            let _ = fragment_format(&text);
        }
    }

    /// `(iptables-save; ip rule) > node.txt`: two outputs with no prompt between them are two
    /// sections, each read by its own format.
    #[test]
    fn back_to_back_outputs_are_sections() {
        let text = "*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n0:\tfrom all lookup local\n32765:\tfrom all fwmark 0x4000/0x4000 lookup 100\n";
        let p = split(text);
        assert!(p.decorated);
        let lines: Vec<u32> = p.sections.iter().map(|s| s.line).collect();
        assert_eq!(lines, [1, 5]);
        assert_eq!(
            super::super::detect(&p.sections[1].text).map(|f| f.name),
            Some("ip-rule")
        );
        // One table after another is one output.
        let two = "*mangle\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
        assert!(!split(two).decorated);
    }

    #[test]
    fn plain_output_is_not_decorated() {
        let p = split("*filter\n-A INPUT -j ACCEPT\nCOMMIT\n");
        assert!(!p.decorated);
        assert_eq!(p.sections.len(), 1);
    }
}
