// Example eBPF programs for `markspace audit marks.o` (built with
// `clang -O2 -g -target bpf -c marks.c -o marks.o`; the object is committed so the tests need
// no compiler). No headers: the UAPI context structs are declared up to the fields used.
typedef unsigned int __u32;
struct __sk_buff { __u32 len, pkt_type, mark; };
struct bpf_sock { __u32 bound_dev_if, family, type, protocol, mark; };
#define SEC(n) __attribute__((section(n), used))
char _license[] SEC("license") = "GPL";

// Replaces the whole mark: every other owner's bits are lost (MS003).
SEC("tc") int set_whole(struct __sk_buff *skb)
{
	skb->mark = 0x1337;
	return 0;
}

// Cilium's way: the magic nibble 0x0f00 set to 0x0a00 (MARK_MAGIC_TO_PROXY's field), the
// other bits kept. A bpf-to-bpf call into .text does the write.
static __attribute__((noinline)) void set_magic(struct __sk_buff *skb, __u32 magic)
{
	skb->mark = (skb->mark & ~0xf00u) | magic;
}

SEC("tc") int cil_to_host(struct __sk_buff *skb)
{
	if ((skb->mark & 0xf00) == 0x200)
		return 0;
	set_magic(skb, 0xa00);
	return 0;
}

// A socket mark set at socket creation (cgroup/sock_create).
SEC("cgroup/sock_create") int sock_mark(struct bpf_sock *sk)
{
	sk->mark = 0x31000000;
	return 1;
}
