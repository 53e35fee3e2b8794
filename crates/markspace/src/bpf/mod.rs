//! eBPF programs and what they do to the mark.
//!
//! A program reaches the packet mark through its context: `__sk_buff->mark` at byte 8 for tc
//! (`sched_cls`, `sched_act`, tcx, netkit), `cgroup_skb`, `lwt_*` and socket filters, and
//! `bpf_sock->mark` at byte 16 for `cgroup/sock_create` and `cgroup/sock_release`
//! (`include/uapi/linux/bpf.h`; `net/core/filter.c` `*_is_valid_access` decides which may
//! write). In the kernel's translated code (`bpftool prog dump xlated`) the same accesses go to
//! `struct sk_buff` / `struct sock` at their offsets in the running kernel, which BTF gives.
//!
//! [`Object`] is a set of programs over shared code (an ELF object after relocation, or the
//! programs of a live node); [`analyse`] runs the abstract interpreter of `interp` on one
//! program and returns its [`Effects`]: every read and write of the mark in the audit's
//! algebra, with its instruction index.

mod elf;
mod insn;
mod interp;
mod sym;

pub(crate) use elf::is_bpf_elf;
pub use elf::ElfError;
pub use insn::Insn;
pub(crate) use insn::Show;
pub use interp::{analyse, Effects};
pub use sym::Sym;

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
    /// Reads an ELF object (`clang -target bpf -c`) and relocates its calls as libbpf does.
    pub fn from_elf(bytes: &[u8]) -> Result<Object, ElfError> {
        elf::read(bytes)
    }

    /// What a program does to the mark, for any entry mark.
    pub fn effects(&self, program: &Program) -> Effects {
        self.effects_from(program, Sym::mark())
    }

    /// What a program does to the mark when it starts from `entry_mark`.
    pub fn effects_from(&self, program: &Program, entry_mark: Sym) -> Effects {
        let Some(code) = self.code.get(program.code) else {
            return Effects::default();
        };
        analyse(
            &code.insns,
            program.entry,
            program.context.mark_offset(),
            entry_mark,
        )
    }
}
