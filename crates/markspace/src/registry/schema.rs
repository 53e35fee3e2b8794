//! The registry's file format (`registry/README.md` documents it for contributors).

use serde::{Deserialize, Serialize};

pub use crate::model::Bits;

/// Which mark-like field a claim is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimKind {
    /// The packet mark.
    Mark,
    /// The connmark.
    Ctmark,
    /// `SO_MARK` on its sockets (becomes the packet mark).
    SocketMark,
    /// xfrm state/policy `mark` selectors.
    XfrmMark,
    /// xfrm state `output-mark`.
    XfrmOutputMark,
    /// OVS `pkt_mark` (the packet mark in the kernel datapath).
    OvsPktMark,
    /// OVS `ct_mark`.
    OvsCtMark,
    /// WireGuard device fwmark (a whole packet-mark write on encapsulated packets).
    WgFwmark,
    /// `ip rule fwmark` selectors (reads of the packet mark).
    IpRule,
    /// `TPROXY --tproxy-mark` / nft `tproxy … meta mark set`.
    TproxyMark,
}

impl ClaimKind {
    /// The netfilter field whose bits this claim occupies: everything but the connmark kinds lands
    /// in the packet mark.
    pub fn field(self) -> crate::model::Field {
        match self {
            ClaimKind::Ctmark | ClaimKind::OvsCtMark => crate::model::Field::CtMark,
            _ => crate::model::Field::Mark,
        }
    }
}

/// Read, write or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Only reads.
    Read,
    /// Only writes.
    Write,
    /// Reads and writes.
    ReadWrite,
}

/// Masked operations or whole-field ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Style {
    /// Masked: touches only its bits.
    Bitwise,
    /// Replaces or compares all 32 bits.
    Whole,
}

/// What the bits are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Use {
    /// Application identity (Cilium identities, Istio).
    ApplicationIdentity,
    /// Masquerade (SNAT) decisions.
    Masquerade,
    /// Multi-homing and reply routing.
    MultiHoming,
    /// Network policy verdicts.
    NetworkPolicy,
    /// Anything else.
    Other,
    /// Service proxies (TPROXY, L7 proxies).
    ServiceProxy,
    /// Transparent encryption (IPsec, WireGuard).
    TransparentEncryption,
    /// Virtual IP services (kube-proxy, IPVS).
    VirtualIpService,
}

/// A named value inside a claim.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Value {
    /// The value.
    pub value: Bits,
    /// What it means.
    pub meaning: String,
    /// Where the fact comes from.
    #[serde(default)]
    pub source: Option<String>,
    /// Other software known to use the same value, with a source (Istio's 1337 is also
    /// OpenMPTCProuter's shadowsocks mark): such a value proves nothing about the owner on its
    /// own, so attribution does not take it as evidence.
    #[serde(default)]
    pub shared_with: Option<String>,
    /// False when unverified.
    #[serde(default = "yes")]
    pub verified: bool,
}

/// Bits a software uses.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Unique within the file.
    pub id: String,
    /// Which field.
    pub kind: ClaimKind,
    /// The bits.
    pub bits: Bits,
    /// Read, write or both.
    pub access: Access,
    /// Masked or whole.
    pub style: Style,
    /// What for.
    #[serde(rename = "use")]
    pub use_case: Use,
    /// Subsystems that read or write these bits.
    #[serde(default)]
    pub subsystems: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Release range where this layout holds.
    #[serde(default)]
    pub versions: Option<String>,
    /// Knobs that move these bits.
    #[serde(default)]
    pub config: Vec<String>,
    /// Named values.
    #[serde(default)]
    pub values: Vec<Value>,
    /// What the number carried in these bits is called (`identity`, `key index`), when the bits
    /// encode a number rather than flags.
    #[serde(default)]
    pub number: Option<String>,
    /// How the number is laid out: the sum over segments of `((mark & bits) >> shift) << to`.
    /// Empty means the bits hold the number shifted down to bit 0.
    #[serde(default)]
    pub encoding: Vec<Segment>,
    /// Where the fact comes from.
    pub source: String,
    /// False when unverified.
    #[serde(default = "yes")]
    pub verified: bool,
    /// True when the claim records bits a bug used (Tailscale's nftables endianness bug before
    /// 1.98.2): kept as knowledge, for incidents and decoding, but not part of what the software
    /// is meant to use, so its bits do not count as claimed.
    #[serde(default)]
    pub bug: bool,
    /// The network namespace the claim's rules live in (default `host`). The kernel clears the
    /// packet mark when a packet crosses namespaces, so claims in different namespaces never
    /// meet (`plan` allocates per namespace).
    #[serde(default)]
    pub namespace: Namespace,
    /// Settings under which the claim exists, all required: `KNOB=VALUE` or `KNOB!=VALUE` over
    /// the entry's knob ids (`wireguard-enabled=true`). Empty: always, with its default settings.
    /// `plan` evaluates them against the settings it plans (defaults unless `--set`).
    #[serde(default)]
    pub when: Vec<String>,
}

/// Where a claim's rules live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// The host's network namespace (the node's own rules).
    #[default]
    Host,
    /// Each pod's (or container's) own network namespace.
    Pod,
}

/// One segment of a number spread over mark bits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// The mark bits of this segment.
    pub bits: Bits,
    /// Right shift applied after masking.
    #[serde(default)]
    pub shift: u8,
    /// Left shift into the number.
    #[serde(default)]
    pub to: u8,
}

impl Claim {
    /// The number a mark value carries in this claim's bits (see [`Claim::encoding`]).
    pub fn decode_number(&self, mark: u32) -> u64 {
        if self.encoding.is_empty() {
            let bits = self.bits.0;
            return u64::from((mark & bits) >> bits.trailing_zeros().min(31));
        }
        self.encoding.iter().fold(0u64, |acc, s| {
            let part = u64::from((mark & s.bits.0) >> u32::from(s.shift.min(31)));
            acc | (part << u32::from(s.to.min(63)))
        })
    }

    /// The bits the claim occupies in an allocation.
    ///
    /// A bitwise claim occupies its mask. A whole-field claim (it replaces or compares all 32
    /// bits) occupies the bits of its named values when it lists some (WireGuard's 0xca6c), its
    /// mask when that is narrower than the field (Cilium's identity bits), and nothing when it is
    /// a whole-field operation without a value of its own (an unmasked connmark restore): such
    /// claims are practices, reported on their own, not allocations.
    pub fn occupied(&self) -> u32 {
        match self.style {
            Style::Bitwise => self.bits.0,
            Style::Whole => {
                let values = self.values.iter().fold(0, |a, v| a | v.value.0);
                match (self.bits.0, values) {
                    (crate::model::ALL_BITS, 0) => 0,
                    (crate::model::ALL_BITS, v) => v,
                    (bits, _) => bits,
                }
            }
        }
    }
}

/// What a knob sets, which says how its default is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KnobKind {
    /// A bit number, 0 to 31 (kube-proxy's `--masquerade-bit`).
    Bit,
    /// A mask (Calico's `IptablesMarkMask`).
    Mask,
    /// A mark value.
    Value,
    /// On or off.
    Bool,
    /// Anything else (table ids, priorities, modes).
    Other,
}

/// A knob's default, read at load time as its [`KnobKind`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnobDefault {
    /// A `bit` knob's bit number (0 to 31).
    Bit(u8),
    /// A `mask` knob's mask.
    Mask(Bits),
    /// A `value` knob's value; `None` when the default is words rather than one number
    /// (`unset`, `0 (unset)`, `0x2023 (sing-tun default)`).
    Value(Option<Bits>),
    /// `bool` and `other` knobs: the default is only text.
    Text,
}

impl KnobDefault {
    /// Reads `text` as a default of `kind`: a bit knob needs a bit number, a mask knob a 32-bit
    /// number, and a value knob's default, when it is one word starting with a digit, must be a
    /// 32-bit number.
    pub fn read(kind: KnobKind, text: &str) -> Result<KnobDefault, String> {
        let t = text.trim();
        match kind {
            KnobKind::Bit => match Bits::parse(t) {
                Ok(Bits(n)) if n < 32 => Ok(KnobDefault::Bit(n as u8)),
                _ => Err(format!("default `{text}` is not a bit number 0-31")),
            },
            KnobKind::Mask => Bits::parse(t)
                .map(KnobDefault::Mask)
                .map_err(|e| format!("default `{text}` is not a 32-bit mask: {e}")),
            KnobKind::Value => match Bits::parse(t) {
                Ok(v) => Ok(KnobDefault::Value(Some(v))),
                Err(e)
                    if t.starts_with(|c: char| c.is_ascii_digit())
                        && !t.contains(char::is_whitespace) =>
                {
                    Err(format!("default `{text}` is not a 32-bit value: {e}"))
                }
                Err(_) => Ok(KnobDefault::Value(None)),
            },
            KnobKind::Bool | KnobKind::Other => Ok(KnobDefault::Text),
        }
    }
}

/// A configuration knob that moves bits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(try_from = "KnobFile")]
pub struct Knob {
    /// Unique within the file.
    pub id: String,
    /// The knob's own name.
    pub name: String,
    /// Where it is set.
    #[serde(rename = "where")]
    pub location: String,
    /// Its default as written (shown as written).
    pub default: String,
    /// Allowed values.
    pub allowed: Option<String>,
    /// What it sets.
    pub kind: KnobKind,
    /// Claims it moves.
    pub claims: Vec<String>,
    /// Where the fact comes from.
    pub source: String,
    /// False when unverified.
    pub verified: bool,
    /// [`Knob::default`] read as [`Knob::kind`] says.
    #[serde(skip)]
    pub typed_default: KnobDefault,
    /// For `plan`: how the knob may be moved and written.
    pub plan: KnobPlan,
}

/// What `plan` needs to know about a knob beyond its kind and default (every field optional in
/// the file; absent means the knob is not used to move bits).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KnobPlan {
    /// The value in effect when the knob is left unset, when [`Knob::default`] is words
    /// (wg-quick's FwMark: unset means 51820).
    #[serde(default)]
    pub effective_default: Option<Bits>,
    /// Mask knobs: the fewest bits the software needs in its mask (Calico Felix: accept, pass,
    /// drop, scratch0, scratch1).
    #[serde(default)]
    pub min_bits: Option<u8>,
    /// Mask knobs: the mask must be one run of bits.
    #[serde(default)]
    pub contiguous: bool,
    /// Release range where the knob has effect (`<1.28`: kubelet's mark flags are no-ops from
    /// 1.28); outside it the knob is not offered.
    #[serde(default)]
    pub versions: Option<String>,
    /// Why turning this knob alone does not move the software's bits safely (Istio: istiod also
    /// sets 1337 in Envoy's `original_src`); `plan` then treats its claims as fixed and says why.
    #[serde(default)]
    pub not_alone: Option<String>,
    /// Another knob, `software/knob`, that must hold the same value (kubelet's and kube-proxy's
    /// masquerade bits).
    #[serde(default)]
    pub same_as: Option<String>,
    /// How to write the knob, one way per tool or file.
    #[serde(default)]
    pub set: Vec<Setting>,
}

/// One way to write a knob's value.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// The syntax of the snippet.
    pub syntax: SettingSyntax,
    /// The file, resource or command it goes into (`FelixConfiguration default`,
    /// `/etc/docker/daemon.json`, `wg-quick wg0.conf [Interface]`).
    pub target: String,
    /// The key: a dotted path for YAML and JSON, a flag, a variable or an INI key.
    pub key: String,
    /// Write the value in decimal rather than `0x…` hex.
    #[serde(default)]
    pub decimal: bool,
    /// Write the value as a quoted string.
    #[serde(default)]
    pub quoted: bool,
}

/// The syntax a [`Setting`] is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingSyntax {
    /// An environment variable `KEY=VALUE`.
    Env,
    /// A command-line flag `KEY=VALUE`.
    Flag,
    /// An INI line `KEY = VALUE` (wg-quick).
    Ini,
    /// A JSON document with the dotted key path.
    Json,
    /// A YAML document with the dotted key path (Kubernetes resources, Helm values).
    Yaml,
}

/// A knob as the file writes it, before its default is read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnobFile {
    id: String,
    name: String,
    #[serde(rename = "where")]
    location: String,
    default: String,
    #[serde(default)]
    allowed: Option<String>,
    kind: KnobKind,
    #[serde(default)]
    claims: Vec<String>,
    source: String,
    #[serde(default = "yes")]
    verified: bool,
    #[serde(default)]
    plan: KnobPlan,
}

impl TryFrom<KnobFile> for Knob {
    type Error = String;

    fn try_from(k: KnobFile) -> Result<Self, String> {
        let typed_default =
            KnobDefault::read(k.kind, &k.default).map_err(|e| format!("knob `{}`: {e}", k.id))?;
        Ok(Knob {
            id: k.id,
            name: k.name,
            location: k.location,
            default: k.default,
            allowed: k.allowed,
            kind: k.kind,
            claims: k.claims,
            source: k.source,
            verified: k.verified,
            typed_default,
            plan: k.plan,
        })
    }
}

impl Knob {
    /// The default of a knob that moves bits, as its kind and number: a bit knob's bit number, a
    /// mask knob's mask, a value knob's non-zero value (its default, else
    /// `plan.effective_default`). `None` for knobs that only switch modes or whose default is
    /// words with no effective value.
    pub fn movable_default(&self) -> Option<(KnobKind, u32)> {
        match (self.kind, self.typed_default) {
            (KnobKind::Bit, KnobDefault::Bit(n)) => Some((KnobKind::Bit, u32::from(n))),
            (KnobKind::Mask, KnobDefault::Mask(m)) => Some((KnobKind::Mask, m.0)),
            (KnobKind::Value, KnobDefault::Value(v)) => v
                .or(self.plan.effective_default)
                .filter(|v| v.0 != 0)
                .map(|v| (KnobKind::Value, v.0)),
            _ => None,
        }
    }

    /// Whether this knob names claim `c` (either side may name the other).
    pub fn names(&self, c: &Claim) -> bool {
        self.claims.contains(&c.id) || c.config.contains(&self.id)
    }

    /// Whether this knob moves claim `c`'s bits: it names the claim and has a movable default.
    pub fn moves(&self, c: &Claim) -> bool {
        self.names(c) && self.movable_default().is_some()
    }
}

/// A statement that no setting moves some claims' bits: the constants are compiled in, or the
/// only settings switch the claims on and off. `plan` gives its reason and source for them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fixed {
    /// Ids of the entry's claims it covers.
    pub claims: Vec<String>,
    /// Why no setting moves these bits (`constant LinuxFwmarkMask in tsconst/linuxfw.go; no flag
    /// or env var`).
    pub reason: String,
    /// Where the fact comes from: repository, path and version or commit, or a URL.
    pub source: String,
    /// False when unverified (the reason then says what could not be checked).
    #[serde(default = "yes")]
    pub verified: bool,
}

impl Fixed {
    /// The reason with its source, as `plan` prints it.
    pub fn sourced(&self) -> String {
        format!(
            "{} (source: {}{})",
            self.reason,
            self.source,
            if self.verified { "" } else { "; unverified" }
        )
    }
}

impl Software {
    /// The fixed statement covering claim `id`, if any.
    pub fn fixed_for(&self, id: &str) -> Option<&Fixed> {
        self.fixed.iter().find(|f| f.claims.iter().any(|c| c == id))
    }

    /// Whether some knob of the entry moves claim `c` (see [`Knob::moves`]).
    pub fn knob_moves(&self, c: &Claim) -> bool {
        self.knobs.iter().any(|k| k.moves(c))
    }
}

/// How to recognise a software's rules.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Signatures {
    /// Exact chain names.
    #[serde(default)]
    pub chains: Vec<String>,
    /// Chain name prefixes.
    #[serde(default)]
    pub chain_prefixes: Vec<String>,
    /// Substrings of rule comments.
    #[serde(default)]
    pub comments: Vec<String>,
    /// Prefixes of rule comments.
    #[serde(default)]
    pub comment_prefixes: Vec<String>,
    /// nft table names (`"kube-proxy"`, or with the family: `"inet mullvad"`).
    #[serde(default)]
    pub tables: Vec<String>,
    /// nft table name prefixes, for tables named after an interface (`"wg-quick-"` matches
    /// wg-quick's `wg-quick-wg0`, `wg-quick-mullvad`).
    #[serde(default)]
    pub table_prefixes: Vec<String>,
    /// `ip rule` priorities or ranges (`"5210-5270"`).
    #[serde(default)]
    pub ip_rule_priorities: Vec<String>,
    /// `ip rule` tables.
    #[serde(default)]
    pub ip_rule_tables: Vec<String>,
    /// eBPF program names.
    #[serde(default)]
    pub programs: Vec<String>,
    /// Process names of sockets carrying marks (`ss -e` `users:(("tailscaled",…))`).
    #[serde(default)]
    pub processes: Vec<String>,
    /// Mark patterns `V/M` distinctive of the software outside netfilter: a touchpoint whose
    /// constant `c` has `c & M == V` is the software's (Cilium's xfrm marks `0x00000e00/0x00000f00`
    /// carry a key index and node ID around the fixed nibble). Weaker than `values`.
    #[serde(default)]
    pub mark_patterns: Vec<String>,
    /// Interface names or prefixes (`cali` matches `-i cali+` and `cali12ab`).
    #[serde(default)]
    pub devices: Vec<String>,
    /// Mark values distinctive enough to name the software on their own (weakest signature).
    #[serde(default)]
    pub values: Vec<Bits>,
    /// Where the facts come from.
    #[serde(default)]
    pub source: Option<String>,
    /// False when unverified.
    #[serde(default = "yes")]
    pub verified: bool,
}

/// Bits of another software read on purpose.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReadsFrom {
    /// The other software's id.
    pub owner: String,
    /// Which field.
    pub kind: ClaimKind,
    /// The bits.
    pub bits: Bits,
    /// Why.
    #[serde(default)]
    pub why: String,
    /// True (the default) when the reader has the owner's bits compiled in (flannel's
    /// `KubeProxyMark = "0x4000/0x4000"`): moving them breaks the reader, so `plan` keeps the
    /// owner's knob at its default while the reader is planned. False when the reader follows the
    /// owner's setting (CNI portmap's `externalSetMarkChain = KUBE-MARK-MASQ` jumps to kube-proxy's
    /// own chain).
    #[serde(default = "yes")]
    pub literal: bool,
    /// Where the fact comes from.
    pub source: String,
    /// False when unverified.
    #[serde(default = "yes")]
    pub verified: bool,
}

/// A rule line the software really installs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleExample {
    /// `iptables`, `nft`, `ip-rule` or `other`.
    pub format: String,
    /// Table (iptables table, nft `family name`).
    #[serde(default)]
    pub table: String,
    /// The line.
    pub text: String,
    /// False when the line carries no signature of its own (it is recognised only next to the
    /// software's other rules); attribution tests skip it.
    #[serde(default = "yes")]
    pub recognisable: bool,
    /// Where it comes from.
    pub source: String,
    /// False when unverified.
    #[serde(default = "yes")]
    pub verified: bool,
}

/// One software's registry entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Software {
    /// Lowercase, dash-separated id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: String,
    /// One line.
    #[serde(default)]
    pub summary: String,
    /// Homepage or repository.
    #[serde(default)]
    pub homepage: Option<String>,
    /// False for software known to use no marks.
    #[serde(default = "yes")]
    pub uses_marks: bool,
    /// Where the entry's facts come from overall.
    pub source: String,
    /// False when unverified.
    #[serde(default = "yes")]
    pub verified: bool,
    /// Bits it uses.
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Knobs.
    #[serde(default)]
    pub knobs: Vec<Knob>,
    /// Claims no setting moves, and why.
    #[serde(default)]
    pub fixed: Vec<Fixed>,
    /// Recognition.
    #[serde(default)]
    pub signatures: Signatures,
    /// Cooperative reads.
    #[serde(default)]
    pub reads_from: Vec<ReadsFrom>,
    /// Software that shares its bits by design (kubelet and kube-proxy both own the Kubernetes
    /// masquerade bit; a distribution bundles its components' layouts).
    #[serde(default)]
    pub cooperates_with: Vec<String>,
    /// Real rule lines.
    #[serde(default)]
    pub rules: Vec<RuleExample>,
    /// Free-form notes.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Software {
    /// The union of the bits its claims occupy in one netfilter field (see [`Claim::occupied`]),
    /// claims that describe bugs left out.
    pub fn claimed(&self, field: crate::model::Field) -> u32 {
        self.claims
            .iter()
            .filter(|c| c.kind.field() == field && !c.bug)
            .fold(0, |acc, c| acc | c.occupied())
    }
}

/// A known real-world conflict.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Unique id.
    pub id: String,
    /// One line.
    pub title: String,
    /// Software involved (registry ids).
    pub software: Vec<String>,
    /// Which field.
    pub kind: ClaimKind,
    /// The bits.
    pub bits: Bits,
    /// How it breaks.
    #[serde(default)]
    pub mechanism: String,
    /// The findings (catalogue names: `shared-bits`, `whole-mark-match`, …) whose mechanism is
    /// this incident's; empty when no finding reproduces it (a collision inside one software).
    #[serde(default)]
    pub clash: Vec<String>,
    /// Issue links.
    #[serde(default)]
    pub links: Vec<String>,
    /// How it was resolved.
    #[serde(default)]
    pub resolution: String,
    /// False when unverified.
    #[serde(default = "yes")]
    pub verified: bool,
}

/// The file of incidents.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentFile {
    /// All incidents.
    #[serde(default)]
    pub incidents: Vec<Incident>,
}

fn yes() -> bool {
    true
}
