//! eBPF programs and what they do to the mark.
//!
//! A program reaches the packet mark through its context: `__sk_buff->mark` at byte 8 for tc
//! (`sched_cls`, `sched_act`, tcx, netkit), `cgroup_skb`, `lwt_*` and socket filters, and
//! `bpf_sock->mark` at byte 16 for `cgroup/sock_create` and `cgroup/sock_release`
//! (`include/uapi/linux/bpf.h`; `net/core/filter.c` `*_is_valid_access` decides which may
//! write). In the kernel's translated code (`bpftool prog dump xlated`) the same accesses go to
//! `struct sk_buff` / `struct sock` at their offsets in the running kernel, which BTF gives.
//!
//! [`Object`] ([`read_elf`]) is a set of programs over shared code (an ELF object after relocation, or the
//! programs of a live node); [`analyse`] runs the abstract interpreter of `interp` on one
//! program and returns its [`Effects`]: every read and write of the mark in the audit's
//! algebra, with its instruction index.

pub mod btf;
mod elf;
mod insn;
mod interp;
mod program;
mod sym;

pub(crate) use elf::is_bpf_elf;
pub use elf::{read as read_elf, ElfError};
pub use insn::Insn;
pub(crate) use insn::Show;
pub use interp::{analyse, leaders, Effects};
pub use program::{section_type, Code, Context, Object, Program, BPF_SOCK_MARK, SK_BUFF_MARK};
pub use sym::Sym;
