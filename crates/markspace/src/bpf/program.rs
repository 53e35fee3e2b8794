//! Programs, the code they run and where their context holds the mark.

use super::insn::Insn;
use super::interp::{analyse, leaders, Effects};
use super::sym::Sym;

/// Where a program's context holds the mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// `struct __sk_buff` (or the kernel's `struct sk_buff` in translated code): the packet
    /// mark at this byte offset.
    Skb(i32),
    /// `struct bpf_sock` (or `struct sock`): the socket mark at this byte offset.
    Sock(i32),
    /// A context without a mark (XDP, tracing, …).
    None,
}

impl Context {
    /// The byte offset of the mark, if the context has one.
    pub fn mark_offset(&self) -> Option<i32> {
        match self {
            Context::Skb(o) | Context::Sock(o) => Some(*o),
            Context::None => None,
        }
    }
}

/// `__sk_buff.mark`: after `len` and `pkt_type` (`include/uapi/linux/bpf.h`).
pub const SK_BUFF_MARK: i32 = 8;
/// `bpf_sock.mark`: after `bound_dev_if`, `family`, `type`, `protocol`.
pub const BPF_SOCK_MARK: i32 = 16;

/// The program type and context of an ELF section name, as libbpf reads them
/// (`tools/lib/bpf/libbpf.c`, `section_defs`). Unknown names are taken as tc programs, the way
/// `tc filter add … bpf obj FILE sec NAME` loads any section (Cilium's older objects use
/// names like `from-container`).
pub fn section_type(section: &str) -> (&'static str, Context) {
    const TYPES: &[(&str, &str, Context)] = &[
        ("tcx/", "sched_cls", Context::Skb(SK_BUFF_MARK)),
        ("tc", "sched_cls", Context::Skb(SK_BUFF_MARK)),
        ("netkit/", "sched_cls", Context::Skb(SK_BUFF_MARK)),
        ("classifier", "sched_cls", Context::Skb(SK_BUFF_MARK)),
        ("action", "sched_act", Context::Skb(SK_BUFF_MARK)),
        ("cgroup_skb/", "cgroup_skb", Context::Skb(SK_BUFF_MARK)),
        ("cgroup/skb", "cgroup_skb", Context::Skb(SK_BUFF_MARK)),
        ("lwt_", "lwt", Context::Skb(SK_BUFF_MARK)),
        ("socket", "socket_filter", Context::Skb(SK_BUFF_MARK)),
        ("sk_skb", "sk_skb", Context::Skb(SK_BUFF_MARK)),
        (
            "cgroup/sock_create",
            "cgroup_sock",
            Context::Sock(BPF_SOCK_MARK),
        ),
        (
            "cgroup/sock_release",
            "cgroup_sock",
            Context::Sock(BPF_SOCK_MARK),
        ),
        ("cgroup/sock", "cgroup_sock", Context::Sock(BPF_SOCK_MARK)),
        (
            "cgroup/post_bind",
            "cgroup_sock",
            Context::Sock(BPF_SOCK_MARK),
        ),
    ];
    const OTHER: &[&str] = &[
        "kprobe",
        "kretprobe",
        "uprobe",
        "uretprobe",
        "usdt",
        "ksyscall",
        "kretsyscall",
        "tracepoint",
        "tp",
        "raw_tracepoint",
        "raw_tp",
        "tp_btf",
        "fentry",
        "fexit",
        "fmod_ret",
        "freplace",
        "lsm",
        "iter",
        "syscall",
        "xdp",
        "perf_event",
        "struct_ops",
        "sk_lookup",
        "sk_msg",
        "sk_reuseport",
        "flow_dissector",
        "cgroup/",
        "sockops",
        "lirc_mode2",
        "netfilter",
        "seccomp",
    ];
    if let Some((_, t, c)) = TYPES.iter().find(|(p, _, _)| section.starts_with(p)) {
        return (t, *c);
    }
    if OTHER.iter().any(|p| section.starts_with(p)) {
        return ("other", Context::None);
    }
    ("sched_cls", Context::Skb(SK_BUFF_MARK))
}

/// Instructions shared by one or more programs (an ELF section with the `.text` functions it
/// calls appended, or one live program's translated code).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Code {
    /// The section (or program) it comes from.
    pub section: String,
    /// The instructions, calls relocated.
    pub insns: Vec<Insn>,
    /// Where each function starts (its symbol), sorted by index: for listings.
    pub functions: Vec<(usize, String)>,
    /// The block leaders of `insns`, computed once for all the programs that share them.
    pub(crate) leaders: std::sync::OnceLock<Vec<bool>>,
}

impl Code {
    /// The function an instruction belongs to and its index in it (`set_magic+3`).
    pub fn function_of(&self, pc: usize) -> Option<(&str, usize)> {
        let k = self.functions.partition_point(|(start, _)| *start <= pc);
        let (start, name) = self.functions.get(k.checked_sub(1)?)?;
        Some((name, pc - start))
    }
}

/// One program: an entry into some [`Code`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Its name (the ELF function symbol, or the name the kernel shows).
    pub name: String,
    /// Its program type (`sched_cls`, `cgroup_skb`, …).
    pub kind: String,
    /// Where its context holds the mark.
    pub context: Context,
    /// Index of its code in [`Object::code`].
    pub code: usize,
    /// Index of its first instruction.
    pub entry: usize,
}

/// Programs over shared code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Object {
    /// The code blocks.
    pub code: Vec<Code>,
    /// The programs.
    pub programs: Vec<Program>,
}

impl Object {
    /// What a program does to the mark, for any entry mark.
    pub fn effects(&self, program: &Program) -> Effects {
        self.effects_from(program, Sym::mark())
    }

    /// What a program does to the mark when it starts from `entry_mark`.
    pub fn effects_from(&self, program: &Program, entry_mark: Sym) -> Effects {
        let Some(code) = self.code.get(program.code) else {
            return Effects::default();
        };
        let leaders = code.leaders.get_or_init(|| leaders(&code.insns));
        analyse(
            &code.insns,
            leaders,
            program.entry,
            program.context.mark_offset(),
            entry_mark,
        )
    }
}
