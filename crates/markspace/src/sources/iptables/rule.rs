//! The arguments of one iptables rule (`-A CHAIN -m mark --mark 0x4000/0x4000 -j ACCEPT`) turned
//! into mark operations, a target and a comment.
//!
//! Semantics per extension, from the kernel and libxtables sources:
//! - `-m mark --mark V[/M]`, `-m connmark --mark V[/M]`: `((x & M) == V) ^ invert`, M defaults to
//!   0xffffffff (`xt_mark.c` `mark_mt`, `xt_connmark.c` `connmark_mt`).
//! - `-j MARK`: `--set-xmark V/M` is `m = (m & ~M) ^ V`; `--set-mark V/M` is encoded as
//!   `V/(V|M)`, `--and-mark B` as `0/~B`, `--or-mark B` as `B/B`, `--xor-mark B` as `B/0`
//!   (`libxt_MARK.c` `mark_tg_parse`, `xt_mark.c` `mark_tg`).
//! - `-j CONNMARK`: the same encodings on the connmark; `--save-mark` is
//!   `ct = (ct & ~C) ^ shift(m & N)`, `--restore-mark` is `m = (m & ~N) ^ shift(ct & C)`, both
//!   masks default to 0xffffffff and `--mask X` sets both; with a shift option `--set-xmark`
//!   shifts the whole new value (`xt_connmark.c` `connmark_tg_shift`).
//! - `-j TPROXY --tproxy-mark V[/M]`: `m = (m & ~M) ^ V` when a socket is found; M defaults to
//!   0xffffffff (`xt_TPROXY.c`); only with `-p tcp` or `-p udp`.
//! - `-m socket --restore-skmark`: `m = sk->sk_mark` when a socket matches (`xt_socket.c`).
//! - `-j HMARK`: `m = hash % mod + offset`, a data-dependent write of the whole mark
//!   (`xt_HMARK.c`).
//! - `-j NFQUEUE`: the userspace verdict may set the whole mark (`nfnetlink_queue.c`, NFQA_MARK).
//! - `-j CT --zone mark`: the zone is taken from the low 16 bits of the mark (`xt_CT.c`).
//! - ebtables `-j mark --mark-set|--mark-or|--mark-and|--mark-xor V` and `--mark [!] V[/M]`, where
//!   `/M` alone tests `(m & M) != 0` (`ebt_mark.c`, `ebt_mark_m.c`); arptables `-j MARK` takes
//!   hexadecimal numbers (`libxt_MARK.c` `mark_tg_arp_parse`).

use std::borrow::Cow;

use crate::model::{
    Bits, CopySource, Field, MarkOp, MarkRead, MarkWrite, ReadTest, Shift, WriteOp, ALL_BITS,
};

use super::tokens::Token;
use crate::ruleset::Action;

/// Which tool's syntax a rule is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// iptables and ip6tables.
    Iptables,
    /// arptables: numbers of the MARK target are hexadecimal.
    Arptables,
    /// ebtables: `--mark` is a match without `-m`, and `-j mark` is the mark target.
    Ebtables,
}

/// A malformed rule: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ArgError {
    /// Byte offset in the line.
    pub(crate) offset: usize,
    /// What is wrong.
    pub(crate) message: String,
    /// How to fix it, if there is something to say.
    pub(crate) hint: Option<&'static str>,
}

impl ArgError {
    fn new(offset: usize, message: impl Into<String>) -> Self {
        ArgError {
            offset,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }
}

/// The command a line gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// `-A CHAIN` (also `-C`, `-D` are read as the rule they name).
    Append(Cow<'a, str>),
    /// `-I CHAIN [N]`.
    Insert(Cow<'a, str>, usize),
    /// `-N CHAIN`.
    NewChain(Cow<'a, str>),
    /// `-P CHAIN POLICY`.
    Policy(Cow<'a, str>, Cow<'a, str>),
}

/// What a rule line says.
#[derive(Clone, Debug, Default)]
pub(crate) struct ParsedRule<'a> {
    /// The command (append, insert, …).
    pub(crate) command: Option<Command<'a>>,
    /// `-t TABLE`, in pasted commands.
    pub(crate) table: Option<Cow<'a, str>>,
    /// Mark operations in kernel order.
    pub(crate) ops: Vec<MarkOp>,
    /// The target (`-j`) or goto (`-g`) name.
    pub(crate) target: Option<Cow<'a, str>>,
    /// Whether the target came from `-g`.
    pub(crate) goto: bool,
    /// A verdict implied by a target's options (ebtables `--mark-target`).
    pub(crate) target_verdict: Option<&'static str>,
    /// The comments, joined (borrowed from the line when there is one).
    pub(crate) comment: Option<Cow<'a, str>>,
    /// An address with `:` was seen (the rule is IPv6).
    pub(crate) ipv6: bool,
    /// Interfaces of `-i`/`-o`.
    pub(crate) interfaces: Vec<Cow<'a, str>>,
    /// What a `CT` target does, from its options (`--notrack`, `--zone`, `--helper`).
    pub(crate) ct: Option<Action>,
}

/// A numeric option argument as iptables reads it (`xtables_strtoui`: see [`Bits::parse_arg`]).
fn arg_u32(s: &str) -> Option<u32> {
    Bits::parse_arg(s).ok().map(u32::from)
}

const VALUE_HINT: &str = "mark values are 32-bit numbers: decimal, 0x-prefixed hex or 0-prefixed octal, as in 0x4000 or 0x4000/0xc000";

/// Parses `V[/M]`; a missing mask is 0xffffffff. `allow_empty_value` is ebtables' `/M` form.
fn parse_value_mask(
    tok: &Token<'_>,
    allow_empty_value: bool,
) -> Result<(Option<u32>, u32), ArgError> {
    let text = tok.text.as_ref();
    let bad = |what: &str, at: usize| {
        ArgError::new(tok.offset + at, format!("invalid {what} `{text}`")).hint(VALUE_HINT)
    };
    match text.split_once('/') {
        Some((v, m)) => {
            let value = if v.is_empty() && allow_empty_value {
                None
            } else {
                Some(arg_u32(v).ok_or_else(|| bad("mark value", 0))?)
            };
            let mask = arg_u32(m).ok_or_else(|| bad("mark mask", v.len() + 1))?;
            Ok((value, mask))
        }
        None => Ok((
            Some(arg_u32(text).ok_or_else(|| bad("mark value", 0))?),
            ALL_BITS,
        )),
    }
}

/// Names of iptables/ip6tables/ebtables/arptables target extensions. A `-j NAME` that is not one
/// of these is a jump to a user chain, as iptables itself decides (it refuses chain names that
/// clash with a target).
pub(crate) const KNOWN_TARGETS: &[&str] = &[
    "ACCEPT",
    "AUDIT",
    "CHECKSUM",
    "CLASSIFY",
    "CLUSTERIP",
    "CONNMARK",
    "CONNSECMARK",
    "CONTINUE",
    "CT",
    "DNAT",
    "DNPT",
    "DROP",
    "DSCP",
    "ECN",
    "HL",
    "HMARK",
    "IDLETIMER",
    "LED",
    "LOG",
    "MARK",
    "MASQUERADE",
    "MIRROR",
    "NETMAP",
    "NFLOG",
    "NFQUEUE",
    "NOTRACK",
    "QUEUE",
    "RATEEST",
    "REDIRECT",
    "REJECT",
    "RETURN",
    "SECMARK",
    "SET",
    "SNAT",
    "SNPT",
    "SYNPROXY",
    "TCPMSS",
    "TCPOPTSTRIP",
    "TEE",
    "TOS",
    "TPROXY",
    "TRACE",
    "TTL",
    "ULOG",
    "arpreply",
    "dnat",
    "log",
    "mark",
    "nflog",
    "redirect",
    "snat",
    "ulog",
];

/// The length of the longest name in a list.
const fn longest(names: &[&str]) -> usize {
    let mut i = 0;
    let mut max = 0;
    while i < names.len() {
        if names[i].len() > max {
            max = names[i].len();
        }
        i += 1;
    }
    max
}

/// Whether a `-j` name is a target extension rather than a user chain. The length test first,
/// because most jumps of a large node go to long chain names (`KUBE-SEP-…`) that would otherwise
/// be compared with every name of the list.
pub(crate) fn is_known_target(name: &str) -> bool {
    const LONGEST: usize = longest(KNOWN_TARGETS);
    name.len() <= LONGEST && KNOWN_TARGETS.contains(&name)
}

/// Targets that end the traversal of the base chain (they return an absolute verdict).
pub(crate) const TERMINAL_TARGETS: &[&str] = &[
    "CLUSTERIP",
    "DNAT",
    "MASQUERADE",
    "MIRROR",
    "NETMAP",
    "NFQUEUE",
    "QUEUE",
    "REDIRECT",
    "REJECT",
    "SNAT",
    "SYNPROXY",
    "TPROXY",
    "arpreply",
    "dnat",
    "redirect",
    "snat",
];

/// Generic options of iptables that take one argument. A `match` rather than a list to search,
/// because every word of every rule is checked against it.
fn is_generic_one_arg(word: &str) -> bool {
    matches!(
        word,
        "-s" | "--source"
            | "--src"
            | "-d"
            | "--destination"
            | "--dst"
            | "-i"
            | "--in-interface"
            | "-o"
            | "--out-interface"
            | "-p"
            | "--protocol"
            | "--logical-in"
            | "--logical-out"
            | "--h-length"
            | "--opcode"
            | "--h-type"
            | "--proto-type"
            | "--source-mac"
            | "--destination-mac"
            | "--src-mac"
            | "--dst-mac"
            | "-w"
            | "--wait"
            | "--modprobe"
            | "-W"
            | "--wait-interval"
    )
}

/// Parses the words of one rule line.
pub(crate) fn parse_rule<'a>(
    tokens: &[Token<'a>],
    dialect: Dialect,
) -> Result<ParsedRule<'a>, ArgError> {
    let mut p = RuleParser {
        toks: tokens,
        pos: 0,
        dialect,
        out: ParsedRule::default(),
        proto: None,
    };
    p.run()?;
    Ok(p.out)
}

struct RuleParser<'t, 'a> {
    toks: &'t [Token<'a>],
    pos: usize,
    dialect: Dialect,
    out: ParsedRule<'a>,
    /// `-p` and whether it was negated, lowercase.
    proto: Option<(Cow<'a, str>, bool)>,
}

/// The extension whose options are being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ext {
    Generic,
    Match(MatchKind),
    Target(TargetKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MatchKind {
    Mark,
    Connmark,
    Comment,
    Socket,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TargetKind {
    Mark,
    Connmark,
    Tproxy,
    Hmark,
    Nfqueue,
    Ct,
    EbtMark,
    Other,
}

/// Collected options of a target, checked when the line ends.
#[derive(Default)]
struct TargetState {
    kind: Option<TargetKind>,
    offset: usize,
    // MARK / CONNMARK
    op: Option<(&'static str, u32, u32, usize)>,
    nfmask: Option<u32>,
    ctmask: Option<u32>,
    shift: Shift,
    // TPROXY
    on_port: bool,
    tproxy_mark: Option<(u32, u32)>,
    // HMARK
    hmark_mod: Option<u32>,
    hmark_ports: bool,
    hmark_spi: bool,
    // ebtables mark target
    ebt_verdict: Option<&'static str>,
    // CT --zone mark
    zone_from_mark: bool,
}

impl<'t, 'a> RuleParser<'t, 'a> {
    fn peek(&self) -> Option<&'t Token<'a>> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<&'t Token<'a>> {
        let t = self.toks.get(self.pos);
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn arg(&mut self, opt: &Token<'a>) -> Result<&'t Token<'a>, ArgError> {
        self.next().ok_or_else(|| {
            ArgError::new(
                opt.offset,
                format!("option `{}` requires an argument", opt.text),
            )
        })
    }

    /// Optional `!` after an option (old syntax `--mark ! 0x1`).
    fn late_invert(&mut self) -> bool {
        if self.peek().is_some_and(|t| t.text == "!") {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn run(&mut self) -> Result<(), ArgError> {
        // `[pkts:bytes]` counters in front (iptables-save -c).
        if self
            .peek()
            .is_some_and(|t| t.text.starts_with('[') && t.text.ends_with(']'))
        {
            self.pos += 1;
        }
        let mut ext = Ext::Generic;
        let mut invert = false;
        let mut target = TargetState::default();
        // A `-m mark`/`-m connmark` still waiting for its `--mark`: (offset, module name).
        let mut pending_match: Option<(usize, String)> = None;
        while let Some(tok) = self.next() {
            if let Some((_, _)) = &pending_match {
                if tok.text == "--mark" || tok.text == "!" {
                    // satisfied below (or by the `!` that precedes it)
                    if tok.text == "--mark" {
                        pending_match = None;
                    }
                } else {
                    let (at, name) = pending_match.take().unwrap_or_default();
                    return Err(ArgError::new(
                        at,
                        format!("`-m {name}` needs `--mark VALUE[/MASK]`"),
                    ));
                }
            }
            let word = tok.text.as_ref();
            if word == "!" {
                invert = true;
                continue;
            }
            // Options that switch extension or are generic are recognised everywhere.
            match word {
                "-A" | "--append" | "-C" | "--check" | "-D" | "--delete" => {
                    let chain = self.arg(tok)?;
                    self.out.command = Some(Command::Append(chain.text.clone()));
                    continue;
                }
                "-I" | "--insert" => {
                    let chain = self.arg(tok)?;
                    let mut pos = 1;
                    if let Some(n) = self.peek().and_then(|t| t.text.parse::<usize>().ok()) {
                        pos = n;
                        self.pos += 1;
                    }
                    self.out.command = Some(Command::Insert(chain.text.clone(), pos));
                    continue;
                }
                "-N" | "--new-chain" | "--new" => {
                    let chain = self.arg(tok)?;
                    self.out.command = Some(Command::NewChain(chain.text.clone()));
                    continue;
                }
                "-P" | "--policy" => {
                    let chain = self.arg(tok)?;
                    let policy = self.arg(tok)?;
                    self.out.command =
                        Some(Command::Policy(chain.text.clone(), policy.text.clone()));
                    // `-P INPUT ACCEPT -c 0 0`
                    continue;
                }
                "-t" | "--table" => {
                    let table = self.arg(tok)?;
                    self.out.table = Some(table.text.clone());
                    continue;
                }
                "-c" | "--set-counters" => {
                    self.arg(tok)?;
                    // `-c 1 2` or `-c 1,2`
                    if self
                        .peek()
                        .is_some_and(|t| t.text.bytes().all(|b| b.is_ascii_digit()))
                    {
                        self.pos += 1;
                    }
                    continue;
                }
                "-m" | "--match" => {
                    let name = self.arg(tok)?;
                    if matches!(name.text.as_ref(), "mark" | "connmark") {
                        pending_match = Some((tok.offset, name.text.to_string()));
                    }
                    ext = Ext::Match(match name.text.as_ref() {
                        "mark" => MatchKind::Mark,
                        "connmark" => MatchKind::Connmark,
                        "comment" => MatchKind::Comment,
                        "socket" => MatchKind::Socket,
                        _ => MatchKind::Other,
                    });
                    invert = false;
                    continue;
                }
                "-j" | "--jump" | "-g" | "--goto" => {
                    let name = self.arg(tok)?;
                    self.out.goto = matches!(word, "-g" | "--goto");
                    self.out.target = Some(name.text.clone());
                    let kind = match (self.dialect, name.text.as_ref()) {
                        (_, "MARK") => TargetKind::Mark,
                        (_, "CONNMARK") => TargetKind::Connmark,
                        (_, "TPROXY") => TargetKind::Tproxy,
                        (_, "HMARK") => TargetKind::Hmark,
                        (_, "NFQUEUE") => TargetKind::Nfqueue,
                        (_, "CT") => TargetKind::Ct,
                        (Dialect::Ebtables, "mark") => TargetKind::EbtMark,
                        _ => TargetKind::Other,
                    };
                    target = TargetState {
                        kind: Some(kind),
                        offset: tok.offset,
                        ..Default::default()
                    };
                    ext = Ext::Target(kind);
                    invert = false;
                    continue;
                }
                "-4" | "-6" | "-f" | "--fragment" => {
                    invert = false;
                    continue;
                }
                _ => {}
            }
            if is_generic_one_arg(word) {
                let mut value = self.arg(tok)?;
                // arptables/old iptables: `-s ! 1.2.3.4`
                if value.text == "!" {
                    value = self.arg(tok)?;
                }
                match word {
                    "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst"
                        if value.text.contains(':') =>
                    {
                        self.out.ipv6 = true;
                    }
                    "-p" | "--protocol" => {
                        let p = &value.text;
                        let lower = if p.bytes().any(|b| b.is_ascii_uppercase()) {
                            Cow::Owned(p.to_ascii_lowercase())
                        } else {
                            p.clone()
                        };
                        self.proto = Some((lower, invert));
                    }
                    "-i" | "--in-interface" | "-o" | "--out-interface" => {
                        self.out.interfaces.push(value.text.clone());
                    }
                    _ => {}
                }
                invert = false;
                continue;
            }
            match ext {
                // iptables lets a target's options follow a later `-m`:
                // `-j MARK -m comment --comment x --set-xmark 0x1/0x1` (kube-router writes this).
                Ext::Match(_) if target.kind.is_some_and(|k| target_accepts(k, word)) => {
                    let kind = target.kind.unwrap_or(TargetKind::Other);
                    self.target_option(kind, tok, &mut target)?
                }
                Ext::Match(kind) => self.match_option(kind, tok, &mut invert)?,
                Ext::Target(kind) => self.target_option(kind, tok, &mut target)?,
                Ext::Generic => {
                    if self.dialect == Dialect::Ebtables && word == "--mark" {
                        self.ebt_mark_match(tok, &mut invert)?;
                    } else if word.starts_with('-') {
                        // An option we do not know: keep its arguments with it.
                        self.skip_args();
                        invert = false;
                    } else {
                        return Err(ArgError::new(tok.offset, format!("unexpected word `{word}`"))
                            .hint("rule arguments are options such as `-m mark --mark 0x1` or `-j ACCEPT`"));
                    }
                }
            }
        }
        if let Some((at, name)) = pending_match {
            return Err(ArgError::new(
                at,
                format!("`-m {name}` needs `--mark VALUE[/MASK]`"),
            ));
        }
        self.finish_target(target)
    }

    /// Skips the arguments of an unknown option: the words up to the next option.
    fn skip_args(&mut self) {
        while let Some(t) = self.peek() {
            if t.text.starts_with('-') && t.text.len() > 1 && !is_number_like(&t.text)
                || t.text == "!"
            {
                break;
            }
            self.pos += 1;
        }
    }

    fn match_option(
        &mut self,
        kind: MatchKind,
        tok: &'t Token<'a>,
        invert: &mut bool,
    ) -> Result<(), ArgError> {
        let word = tok.text.as_ref();
        match (kind, word) {
            (MatchKind::Mark | MatchKind::Connmark, "--mark") => {
                let late = self.late_invert();
                let arg = self.arg(tok)?;
                let (value, mask) = parse_value_mask(arg, false)?;
                let field = if kind == MatchKind::Mark {
                    Field::Mark
                } else {
                    Field::CtMark
                };
                let value = value.unwrap_or(0);
                self.out.ops.push(MarkOp::Read(MarkRead::equals(
                    field,
                    value,
                    mask,
                    *invert ^ late,
                )));
                *invert = false;
            }
            (MatchKind::Comment, "--comment") => {
                let arg = self.arg(tok)?;
                match &mut self.out.comment {
                    Some(c) => {
                        let c = c.to_mut();
                        c.push(' ');
                        c.push_str(&arg.text);
                    }
                    None => self.out.comment = Some(arg.text.clone()),
                }
            }
            (MatchKind::Socket, "--restore-skmark") => {
                self.out.ops.push(MarkOp::Write(MarkWrite {
                    field: Field::Mark,
                    op: WriteOp::Copy {
                        src: CopySource::Socket,
                        src_mask: ALL_BITS,
                        shift: Shift::None,
                        keep: 0,
                    },
                }));
            }
            (MatchKind::Socket, "--transparent" | "--nowildcard") => {}
            // An option no loaded match knows, after `-p PROTO`: iptables loads the protocol's
            // match implicitly (`command_default` / `load_proto` in iptables/xshared.c), as in
            // `-m comment --comment x -p udp --dport 6081` (Antrea's rules).
            (MatchKind::Mark | MatchKind::Connmark | MatchKind::Comment | MatchKind::Socket, _)
                if self.proto.is_some() =>
            {
                self.skip_args();
                *invert = false;
            }
            (MatchKind::Mark | MatchKind::Connmark | MatchKind::Comment | MatchKind::Socket, _) => {
                return Err(ArgError::new(
                    tok.offset,
                    format!("unknown option `{word}` for this match"),
                ));
            }
            (MatchKind::Other, _) => {
                self.skip_args();
                *invert = false;
            }
        }
        Ok(())
    }

    fn ebt_mark_match(&mut self, tok: &'t Token<'a>, invert: &mut bool) -> Result<(), ArgError> {
        let late = self.late_invert();
        let arg = self.arg(tok)?;
        let (value, mask) = parse_value_mask(arg, true)?;
        let test = match value {
            Some(value) => ReadTest::Equals { value, mask },
            None => ReadTest::AnyBit { mask },
        };
        self.out.ops.push(MarkOp::Read(MarkRead {
            field: Field::Mark,
            test,
            invert: *invert ^ late,
        }));
        *invert = false;
        Ok(())
    }

    fn number(&self, tok: &Token<'_>) -> Result<u32, ArgError> {
        let parsed = if self.dialect == Dialect::Arptables {
            Bits::parse_hex(&tok.text).ok().map(u32::from)
        } else {
            arg_u32(&tok.text)
        };
        parsed.ok_or_else(|| {
            ArgError::new(tok.offset, format!("invalid number `{}`", tok.text)).hint(VALUE_HINT)
        })
    }

    fn target_option(
        &mut self,
        kind: TargetKind,
        tok: &'t Token<'a>,
        st: &mut TargetState,
    ) -> Result<(), ArgError> {
        let word = tok.text.as_ref();
        let set_op =
            |st: &mut TargetState, name: &'static str, v: u32, m: u32| -> Result<(), ArgError> {
                if st.op.is_some() {
                    return Err(ArgError::new(
                        tok.offset,
                        format!("`{name}` given after another mark operation"),
                    )
                    .hint("a MARK or CONNMARK target takes exactly one operation"));
                }
                st.op = Some((name, v, m, tok.offset));
                Ok(())
            };
        match (kind, word) {
            (TargetKind::Mark | TargetKind::Connmark, "--set-xmark" | "--set-mark") => {
                let arg = self.arg(tok)?;
                let (value, mask) = if self.dialect == Dialect::Arptables {
                    (Some(self.number(arg)?), ALL_BITS)
                } else {
                    parse_value_mask(arg, false)?
                };
                let value = value.unwrap_or(0);
                let (name, mask) = if word == "--set-mark" && mask != ALL_BITS {
                    ("--set-mark", value | mask)
                } else {
                    (
                        if word == "--set-mark" {
                            "--set-mark"
                        } else {
                            "--set-xmark"
                        },
                        mask,
                    )
                };
                set_op(st, name, value, mask)?;
            }
            (
                TargetKind::Mark | TargetKind::Connmark,
                "--and-mark" | "--or-mark" | "--xor-mark",
            ) => {
                let arg = self.arg(tok)?;
                let bits = self.number(arg)?;
                match word {
                    "--and-mark" => set_op(st, "--and-mark", 0, !bits)?,
                    "--or-mark" => set_op(st, "--or-mark", bits, bits)?,
                    _ => set_op(st, "--xor-mark", bits, 0)?,
                }
            }
            (TargetKind::Connmark, "--save-mark") => set_op(st, "--save-mark", 0, 0)?,
            (TargetKind::Connmark, "--restore-mark") => set_op(st, "--restore-mark", 0, 0)?,
            (TargetKind::Connmark, "--nfmask" | "--ctmask" | "--mask") => {
                let arg = self.arg(tok)?;
                let v = self.number(arg)?;
                match word {
                    "--nfmask" => st.nfmask = Some(v),
                    "--ctmask" => st.ctmask = Some(v),
                    _ => {
                        st.nfmask = Some(v);
                        st.ctmask = Some(v);
                    }
                }
            }
            (TargetKind::Connmark, "--left-shift-mark" | "--right-shift-mark") => {
                let arg = self.arg(tok)?;
                let n = self.number(arg)?;
                if n > 31 {
                    return Err(
                        ArgError::new(arg.offset, format!("shift `{n}` is out of range"))
                            .hint("CONNMARK shifts take 0 to 31 bits"),
                    );
                }
                // A shift of 0 is no shift (iptables-save omits it); keep the forms equal.
                st.shift = if n == 0 {
                    Shift::None
                } else if word == "--left-shift-mark" {
                    Shift::Left(n as u8)
                } else {
                    Shift::Right(n as u8)
                };
            }
            (TargetKind::Tproxy, "--on-port") => {
                let arg = self.arg(tok)?;
                match arg.text.parse::<u32>() {
                    Ok(p) if p <= 65535 => st.on_port = true,
                    _ => {
                        return Err(ArgError::new(
                            arg.offset,
                            format!("invalid port `{}`", arg.text),
                        ))
                    }
                }
            }
            (TargetKind::Tproxy, "--on-ip") => {
                let arg = self.arg(tok)?;
                if arg.text.contains(':') {
                    self.out.ipv6 = true;
                }
            }
            (TargetKind::Tproxy, "--tproxy-mark") => {
                let arg = self.arg(tok)?;
                let (value, mask) = parse_value_mask(arg, false)?;
                st.tproxy_mark = Some((value.unwrap_or(0), mask));
            }
            (TargetKind::Hmark, "--hmark-mod") => {
                let arg = self.arg(tok)?;
                let m = self.number(arg)?;
                if m == 0 {
                    return Err(ArgError::new(
                        arg.offset,
                        "`--hmark-mod` must be at least 1",
                    ));
                }
                st.hmark_mod = Some(m);
            }
            (
                TargetKind::Hmark,
                "--hmark-sport-mask" | "--hmark-dport-mask" | "--hmark-sport" | "--hmark-dport",
            ) => {
                self.arg(tok)?;
                if st.hmark_spi {
                    return Err(ArgError::new(
                        tok.offset,
                        "cannot mix port masks with `--hmark-spi-mask`",
                    ));
                }
                st.hmark_ports = true;
            }
            (TargetKind::Hmark, "--hmark-spi-mask" | "--hmark-spi") => {
                self.arg(tok)?;
                if st.hmark_ports {
                    return Err(ArgError::new(
                        tok.offset,
                        "cannot mix `--hmark-spi-mask` with port masks",
                    ));
                }
                st.hmark_spi = true;
            }
            (TargetKind::Hmark, w) if w.starts_with("--hmark-") => {
                self.arg(tok)?;
            }
            (TargetKind::Ct, "--notrack") => self.out.ct = Some(Action::Notrack),
            (TargetKind::Ct, "--helper") => {
                self.arg(tok)?;
                self.out.ct.get_or_insert(Action::CtHelper);
            }
            (TargetKind::Ct, "--zone" | "--zone-orig" | "--zone-reply") => {
                if self.out.ct != Some(Action::Notrack) {
                    self.out.ct = Some(Action::CtZone);
                }
                let arg = self.arg(tok)?;
                if arg.text == "mark" {
                    st.zone_from_mark = true;
                } else {
                    match arg_u32(&arg.text) {
                        Some(z) if z <= 0xffff => {}
                        _ => {
                            return Err(ArgError::new(
                                arg.offset,
                                format!("invalid zone `{}`", arg.text),
                            )
                            .hint("conntrack zones are 0 to 65535, or `mark`"))
                        }
                    }
                }
            }
            (
                TargetKind::EbtMark,
                "--mark-set" | "--set-mark" | "--mark-or" | "--mark-and" | "--mark-xor",
            ) => {
                let arg = self.arg(tok)?;
                let v = self.number(arg)?;
                let name: &'static str = match word {
                    "--mark-or" => "or",
                    "--mark-and" => "and",
                    "--mark-xor" => "xor",
                    _ => "set",
                };
                set_op(st, name, v, 0)?;
            }
            (TargetKind::EbtMark, "--mark-target") => {
                let arg = self.arg(tok)?;
                st.ebt_verdict = Some(match arg.text.as_ref() {
                    "ACCEPT" => "ACCEPT",
                    "DROP" => "DROP",
                    "RETURN" => "RETURN",
                    "CONTINUE" => "CONTINUE",
                    other => {
                        return Err(ArgError::new(
                            arg.offset,
                            format!("invalid `--mark-target` `{other}`"),
                        )
                        .hint("use ACCEPT, DROP, RETURN or CONTINUE"))
                    }
                });
            }
            (
                TargetKind::Mark | TargetKind::Connmark | TargetKind::Tproxy | TargetKind::EbtMark,
                _,
            ) => {
                return Err(ArgError::new(
                    tok.offset,
                    format!("unknown option `{word}` for this target"),
                ));
            }
            (TargetKind::Hmark | TargetKind::Ct | TargetKind::Nfqueue | TargetKind::Other, _) => {
                if !word.starts_with('-') {
                    return Err(ArgError::new(
                        tok.offset,
                        format!("unexpected word `{word}`"),
                    ));
                }
                self.skip_args();
            }
        }
        Ok(())
    }

    fn finish_target(&mut self, st: TargetState) -> Result<(), ArgError> {
        let Some(kind) = st.kind else { return Ok(()) };
        let missing = |what: &str| ArgError::new(st.offset, format!("target needs {what}"));
        match kind {
            TargetKind::Mark | TargetKind::Connmark => {
                let field = if kind == TargetKind::Mark {
                    Field::Mark
                } else {
                    Field::CtMark
                };
                let Some((name, value, mask, at)) = st.op else {
                    return Err(missing(
                        "one of --set-xmark, --set-mark, --and-mark, --or-mark, --xor-mark",
                    )
                    .hint("for example `-j MARK --set-xmark 0x4000/0x4000`"));
                };
                if (st.nfmask.is_some() || st.ctmask.is_some())
                    && !matches!(name, "--save-mark" | "--restore-mark")
                {
                    return Err(ArgError::new(
                        at,
                        "`--nfmask`/`--ctmask`/`--mask` only go with --save-mark or --restore-mark",
                    ));
                }
                let write = match name {
                    "--save-mark" => MarkWrite {
                        field: Field::CtMark,
                        op: WriteOp::Copy {
                            src: CopySource::Mark,
                            src_mask: st.nfmask.unwrap_or(ALL_BITS),
                            shift: st.shift,
                            keep: !st.ctmask.unwrap_or(ALL_BITS),
                        },
                    },
                    "--restore-mark" => MarkWrite {
                        field: Field::Mark,
                        op: WriteOp::Copy {
                            src: CopySource::CtMark,
                            src_mask: st.ctmask.unwrap_or(ALL_BITS),
                            shift: st.shift,
                            keep: !st.nfmask.unwrap_or(ALL_BITS),
                        },
                    },
                    _ if field == Field::CtMark && st.shift != Shift::None => MarkWrite {
                        field,
                        op: WriteOp::ShiftedConst {
                            keep: !mask,
                            xor: value,
                            shift: st.shift,
                        },
                    },
                    _ => MarkWrite::set_xmark(field, value, mask),
                };
                self.out.ops.push(MarkOp::Write(write));
            }
            TargetKind::Tproxy => {
                match &self.proto {
                    Some((p, false)) if matches!(p.as_ref(), "tcp" | "udp" | "6" | "17") => {}
                    _ => {
                        return Err(ArgError::new(
                            st.offset,
                            "TPROXY works only with `-p tcp` or `-p udp`",
                        )
                        .hint("add `-p tcp` or `-p udp` before `-j TPROXY`"))
                    }
                }
                if !st.on_port {
                    return Err(missing("`--on-port`"));
                }
                if let Some((value, mask)) = st.tproxy_mark {
                    self.out.ops.push(MarkOp::Write(MarkWrite::set_xmark(
                        Field::Mark,
                        value,
                        mask,
                    )));
                }
            }
            TargetKind::Hmark => {
                if st.hmark_mod.is_none() {
                    return Err(missing("`--hmark-mod`")
                        .hint("for example `-j HMARK --hmark-mod 4 --hmark-rnd 0x1`"));
                }
                self.out.ops.push(MarkOp::Write(MarkWrite {
                    field: Field::Mark,
                    op: WriteOp::DataDependent { bits: ALL_BITS },
                }));
            }
            TargetKind::Nfqueue => {
                self.out.ops.push(MarkOp::Write(MarkWrite {
                    field: Field::Mark,
                    op: WriteOp::DataDependent { bits: ALL_BITS },
                }));
            }
            TargetKind::Ct => {
                if st.zone_from_mark {
                    self.out.ops.push(MarkOp::Read(MarkRead {
                        field: Field::Mark,
                        test: ReadTest::Opaque { mask: 0xffff },
                        invert: false,
                    }));
                }
            }
            TargetKind::EbtMark => {
                let Some((name, v, _, _)) = st.op else {
                    return Err(missing(
                        "one of --mark-set, --mark-or, --mark-and, --mark-xor",
                    ));
                };
                let write = match name {
                    "or" => MarkWrite::set_xmark(Field::Mark, v, v),
                    "and" => MarkWrite::set_xmark(Field::Mark, 0, !v),
                    "xor" => MarkWrite::set_xmark(Field::Mark, v, 0),
                    _ => MarkWrite::set_xmark(Field::Mark, v, ALL_BITS),
                };
                self.out.ops.push(MarkOp::Write(write));
                self.out.target_verdict = Some(st.ebt_verdict.unwrap_or("ACCEPT"));
            }
            TargetKind::Other => {}
        }
        Ok(())
    }
}

/// Whether an option belongs to a target extension (for options written after a later `-m`).
fn target_accepts(kind: TargetKind, word: &str) -> bool {
    match kind {
        TargetKind::Mark => matches!(
            word,
            "--set-xmark" | "--set-mark" | "--and-mark" | "--or-mark" | "--xor-mark"
        ),
        TargetKind::Connmark => matches!(
            word,
            "--set-xmark"
                | "--set-mark"
                | "--and-mark"
                | "--or-mark"
                | "--xor-mark"
                | "--save-mark"
                | "--restore-mark"
                | "--nfmask"
                | "--ctmask"
                | "--mask"
                | "--left-shift-mark"
                | "--right-shift-mark"
        ),
        TargetKind::Tproxy => matches!(word, "--on-port" | "--on-ip" | "--tproxy-mark"),
        TargetKind::Hmark => word.starts_with("--hmark-"),
        _ => false,
    }
}

fn is_number_like(s: &str) -> bool {
    s.strip_prefix('-')
        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::iptables::tokens::tokenize;

    fn ops(line: &str) -> Vec<MarkOp> {
        let toks = tokenize(line).unwrap();
        parse_rule(&toks, Dialect::Iptables).unwrap().ops
    }

    fn err(line: &str) -> ArgError {
        let toks = tokenize(line).unwrap();
        parse_rule(&toks, Dialect::Iptables).unwrap_err()
    }

    fn w(field: Field, keep: u32, xor: u32) -> MarkOp {
        MarkOp::Write(MarkWrite::constant(field, keep, xor))
    }

    #[test]
    fn terminal_targets_are_known_targets() {
        for t in TERMINAL_TARGETS {
            assert!(is_known_target(t), "{t}");
        }
        assert!(!is_known_target("KUBE-MARK-MASQ"));
        assert!(is_known_target("TCPOPTSTRIP"));
    }

    #[test]
    fn normalises_mark_mnemonics() {
        assert_eq!(ops("-j MARK --set-mark 0x1"), vec![w(Field::Mark, 0, 1)]);
        assert_eq!(
            ops("-j MARK --set-mark 0x1/0x3"),
            vec![w(Field::Mark, !3, 1)]
        );
        assert_eq!(
            ops("-j MARK --set-mark 0x4/0x3"),
            vec![w(Field::Mark, !7, 4)]
        );
        assert_eq!(
            ops("-j MARK --or-mark 0x4000"),
            vec![w(Field::Mark, !0x4000, 0x4000)]
        );
        assert_eq!(
            ops("-j MARK --and-mark 0xffffbfff"),
            vec![w(Field::Mark, 0xffffbfff, 0)]
        );
        assert_eq!(
            ops("-j MARK --xor-mark 0x4000"),
            vec![w(Field::Mark, ALL_BITS, 0x4000)]
        );
        assert_eq!(
            ops("-j MARK --set-xmark 0x4000/0x0"),
            vec![w(Field::Mark, ALL_BITS, 0x4000)]
        );
    }

    #[test]
    fn accepts_mark_match_forms() {
        let r = |v, m, i| MarkOp::Read(MarkRead::equals(Field::Mark, v, m, i));
        assert_eq!(
            ops("-m mark --mark 0x4000/0x4000"),
            vec![r(0x4000, 0x4000, false)]
        );
        assert_eq!(
            ops("-m mark ! --mark 0x4000/0x4000"),
            vec![r(0x4000, 0x4000, true)]
        );
        assert_eq!(ops("-m mark --mark ! 0x1"), vec![r(1, ALL_BITS, true)]);
        assert_eq!(
            ops("-m mark --mark 4294967295"),
            vec![r(ALL_BITS, ALL_BITS, false)]
        );
        assert_eq!(ops("-m mark --mark 010"), vec![r(8, ALL_BITS, false)]);
    }

    #[test]
    fn connmark_save_restore_defaults_are_whole() {
        let save = ops("-j CONNMARK --save-mark");
        assert_eq!(
            save,
            vec![MarkOp::Write(MarkWrite {
                field: Field::CtMark,
                op: WriteOp::Copy {
                    src: CopySource::Mark,
                    src_mask: ALL_BITS,
                    shift: Shift::None,
                    keep: 0
                }
            })]
        );
        let restore = ops("-j CONNMARK --restore-mark --mask 0x80");
        assert_eq!(
            restore,
            vec![MarkOp::Write(MarkWrite {
                field: Field::Mark,
                op: WriteOp::Copy {
                    src: CopySource::CtMark,
                    src_mask: 0x80,
                    shift: Shift::None,
                    keep: !0x80
                }
            })]
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(err("-j MARK --set-xmark 0xZZ/0xff")
            .message
            .contains("0xZZ"));
        assert_eq!(err("-A X -j MARK --set-xmark 0xZZ/0xff").offset, 25);
        err("-j MARK --set-xmark 4294967296");
        err("-j MARK --set-xmark -1");
        err("-j MARK");
        err("-m mark");
        err("-j CONNMARK");
        err("-j TPROXY --on-port 1 --tproxy-mark 1");
        err("-j HMARK");
    }

    #[test]
    fn target_options_after_a_later_match() {
        let toks =
            tokenize(r#"-A X -j MARK -m comment --comment "a b" --set-xmark 0x10000/0x10000"#)
                .unwrap();
        let r = parse_rule(&toks, Dialect::Iptables).unwrap();
        assert_eq!(r.ops, vec![w(Field::Mark, !0x10000, 0x10000)]);
        assert_eq!(r.comment.as_deref(), Some("a b"));
    }

    #[test]
    fn protocol_options_load_the_protocol_match_implicitly() {
        let toks = tokenize(r#"-A X -m comment --comment "Antrea: x" -p udp --dport 6081 -m mark --mark 0x1/0x1 -j ACCEPT"#).unwrap();
        let r = parse_rule(&toks, Dialect::Iptables).unwrap();
        assert_eq!(
            r.ops,
            vec![MarkOp::Read(MarkRead::equals(Field::Mark, 1, 1, false))]
        );
        assert!(err("-A X -m comment --comment x --dport 1 -j ACCEPT")
            .message
            .contains("unknown option"));
    }

    #[test]
    fn unknown_extensions_are_opaque() {
        let toks = tokenize("-A X -m frobnicate --frob 1 2 --zap -j FROB --x y").unwrap();
        let r = parse_rule(&toks, Dialect::Iptables).unwrap();
        assert!(r.ops.is_empty());
        assert_eq!(r.target.as_deref(), Some("FROB"));
    }

    #[test]
    fn reads_comment_and_counters() {
        let toks =
            tokenize(r#"[1:2] -A X -m comment --comment "cali:abc" -c 3 4 -j ACCEPT"#).unwrap();
        let r = parse_rule(&toks, Dialect::Iptables).unwrap();
        assert_eq!(r.comment.as_deref(), Some("cali:abc"));
        assert_eq!(r.command, Some(Command::Append("X".into())));
    }
}
