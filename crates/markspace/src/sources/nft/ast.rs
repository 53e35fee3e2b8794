//! The rule syntax tree shared by the text and JSON readers.
//!
//! Both nft rule languages (`nft list ruleset` text and libnftables JSON, `libnftables-json(5)`)
//! are read into these types; [`super::lower`] then gives them their kernel meaning. Only what
//! matters for marks is kept: every expression that is not a mark, an integer, or an operator
//! over them becomes [`Expr::Data`] with the sub-expressions it evaluates, so a mark read hidden
//! in a concatenation, a map key or a `fib` lookup is still seen.

use crate::model::Field;
use crate::ruleset::Action;

/// Which mark an expression loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MarkSrc {
    /// `meta mark` / `mark` (`skb->mark`, `nft_meta.c` `NFT_META_MARK`).
    Meta,
    /// `ct mark` (`nf_conn->mark`, `nft_ct.c` `NFT_CT_MARK`).
    Ct,
    /// `socket mark` (`sk->sk_mark` of the packet's socket, `nft_socket.c` `NFT_SOCKET_MARK`).
    Socket,
}

impl MarkSrc {
    /// The netfilter field, `None` for the socket mark.
    pub(crate) fn field(self) -> Option<Field> {
        match self {
            MarkSrc::Meta => Some(Field::Mark),
            MarkSrc::Ct => Some(Field::CtMark),
            MarkSrc::Socket => None,
        }
    }
}

/// A binary operator of `nft_bitwise` (`&`/`and`, `|`/`or`, `^`/`xor`, `<<`/`lshift`,
/// `>>`/`rshift`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    /// `&`.
    And,
    /// `|`.
    Or,
    /// `^`.
    Xor,
    /// `<<`.
    Shl,
    /// `>>`.
    Shr,
}

/// An expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expr {
    /// An integer that fits 32 bits.
    Num(u32),
    /// A mark.
    Mark(MarkSrc),
    /// `a OP b`.
    Binop(BinOp, Box<Expr>, Box<Expr>),
    /// An anonymous set `{ a, b }`.
    Set(Vec<Expr>),
    /// `lo-hi`.
    Range(Box<Expr>, Box<Expr>),
    /// `value/len`.
    Prefix(Box<Expr>, u32),
    /// `a . b`.
    Concat(Vec<Expr>),
    /// `key map { k : v, … }` or `key map @m`.
    Map(Box<Expr>, MapData),
    /// `jhash`, `symhash`, `numgen`: a value in `0..range` from packet data or a counter.
    Hash {
        /// Expressions hashed.
        inputs: Vec<Expr>,
        /// Bits the result may have set.
        bits: u32,
    },
    /// `@set`, `$variable`: contents not known here.
    Named(String),
    /// Any other value (payload, other meta and ct keys, strings, addresses, `fib`…), with the
    /// sub-expressions it evaluates.
    Data(Vec<Expr>),
}

impl Expr {
    /// A value built from other expressions.
    pub(crate) fn data(children: Vec<Expr>) -> Expr {
        Expr::Data(children)
    }

    /// A binary operation.
    pub(crate) fn binop(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binop(op, Box::new(a), Box::new(b))
    }

    /// Calls `f` on this expression and every sub-expression.
    pub(crate) fn walk<'e>(&'e self, f: &mut impl FnMut(&'e Expr)) {
        f(self);
        match self {
            Expr::Num(_) | Expr::Mark(_) | Expr::Named(_) => {}
            Expr::Binop(_, a, b) | Expr::Range(a, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Prefix(a, _) => a.walk(f),
            Expr::Set(v) | Expr::Concat(v) | Expr::Data(v) => v.iter().for_each(|e| e.walk(f)),
            Expr::Hash { inputs, .. } => inputs.iter().for_each(|e| e.walk(f)),
            Expr::Map(k, data) => {
                k.walk(f);
                if let MapData::Elements(els) = data {
                    for (a, b) in els {
                        a.walk(f);
                        b.walk(f);
                    }
                }
            }
        }
    }

    /// Whether a mark of the packet or connection occurs anywhere in the expression.
    pub(crate) fn has_mark(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            found |= matches!(e, Expr::Mark(MarkSrc::Meta | MarkSrc::Ct));
        });
        found
    }
}

/// The data side of a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MapData {
    /// Anonymous `{ key : value, … }`.
    Elements(Vec<(Expr, Expr)>),
    /// `@name`.
    Named(String),
}

/// A relational operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelOp {
    /// `==` or none (implicit; for integer types nft's implicit operator is equality, for sets
    /// lookup).
    Eq,
    /// `!=` (and `!`).
    Ne,
    /// `<`, `>`, `<=`, `>=`.
    Order,
}

/// A verdict as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VerdictAst {
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `continue`.
    Continue,
    /// `return`.
    Return,
    /// `jump CHAIN`.
    Jump(String),
    /// `goto CHAIN`.
    Goto(String),
    /// A terminating statement: `queue`, `reject`, `masquerade`, `snat`, `dnat`, `redirect`,
    /// `synproxy` (their kernel expressions set an NF_* verdict).
    Terminal(Action),
}

/// The action of a terminating statement keyword (text `masquerade`, JSON `{"masquerade": …}`).
pub(crate) fn terminal_action(keyword: &str) -> Action {
    // Its name stays in the rule's target label.
    match keyword {
        "queue" => Action::Queue,
        "reject" => Action::Reject,
        "masquerade" => Action::Masquerade,
        "snat" => Action::Snat,
        "dnat" => Action::Dnat,
        "redirect" => Action::Redirect,
        "synproxy" => Action::Synproxy,
        _ => Action::Other,
    }
}

/// The data side of a verdict map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VmapData {
    /// Anonymous `{ key : verdict, … }`.
    Elements(Vec<(Expr, VerdictAst)>),
    /// `@name`.
    Named(String),
}

/// A statement of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stmt {
    /// `left [op] right`.
    Match {
        /// The selector side.
        left: Expr,
        /// The operator.
        op: RelOp,
        /// The value side.
        right: Expr,
    },
    /// `meta mark set E`, `ct mark set E`.
    SetMark {
        /// The field written.
        field: Field,
        /// The new value.
        value: Expr,
    },
    /// A verdict or terminating statement.
    Verdict(VerdictAst),
    /// A statement with an effect besides marks that does not end the rule: `notrack`, `log`,
    /// `ct zone set`, `ct helper set`.
    Effect(Action),
    /// `key vmap { … }` / `key vmap @m`.
    Vmap {
        /// The lookup key.
        key: Expr,
        /// The verdicts.
        data: VmapData,
    },
    /// `comment "…"`.
    Comment(String),
    /// An `iifname`/`oifname`/`iif`/`oif` match on a name (for attribution).
    Interface(String),
    /// An xtables extension kept by iptables-nft (`xt target "MARK"`); its parameters are not
    /// printed by nft.
    Xt {
        /// `target` (true) or `match`/`watcher`.
        target: bool,
        /// The extension name.
        name: String,
    },
    /// Any other statement, with the expressions it evaluates.
    Other(Vec<Expr>),
}
