//! The seccomp filter bubblewrap loads into every sandbox (`--seccomp FD`).
//!
//! Default allow, with a deny list of the system calls a linter never needs and an attacker
//! wants: kernel and module loading, mounts, tracing other processes, new namespaces, keyrings,
//! BPF and perf, userfaultfd, clock setting, handle-based opens. They fail with EPERM, so a tool
//! that probes for one of them sees an ordinary refusal. `clone3` fails with ENOSYS instead: its
//! flags live in memory a filter cannot read, and ENOSYS is what makes the C library fall back
//! to `clone`, whose flags the filter does check.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

/// Denied outright, whatever their arguments.
// (System call numbers are `c_long`, which is i64 on every architecture seccompiler targets.)
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// `clone` flags that create namespaces.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// `personality` values programs legitimately use (the default, 32-bit Linux, the query, and
/// those with UNAME26): anything else, such as turning off address randomisation, is refused.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The filter as the raw `struct sock_filter` array bubblewrap reads from its fd.
pub fn program() -> Result<Vec<u8>, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let rule = |conditions: Vec<SeccompCondition>| SeccompRule::new(conditions);
    let condition = |arg, len, op, value| SeccompCondition::new(arg, len, op, value);
    let error = |e: seccompiler::BackendError| e.to_string();
    // Any one namespace flag set in clone's first argument matches.
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            let flag = flag as u64;
            rule(vec![condition(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?])
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    rules.insert(libc::SYS_clone, clone_rules);
    // A personality outside the list matches: every "not equal" holds.
    let personality = PERSONALITIES
        .iter()
        .map(|&p| condition(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    rules.insert(
        libc::SYS_personality,
        vec![rule(personality).map_err(error)?],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(error)?;
    let body: BpfProgram = filter.try_into().map_err(error)?;
    let mut program = prelude(audit_arch());
    program.extend(body);
    Ok(to_bytes(&program))
}

/// Runs before seccompiler's program (whose own first step kills other architectures):
/// refuses x32 system calls, which share x86-64's audit architecture but carry bit 30 in their
/// number and so would slip past a list of x86-64 numbers, and answers `clone3` with ENOSYS.
fn prelude(native_arch: u32) -> Vec<sock_filter> {
    // Classic BPF opcodes (linux/bpf_common.h) and seccomp_data offsets (linux/seccomp.h).
    const LD_ABS_W: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | e as u32;
    let x32 = cfg!(target_arch = "x86_64");
    let mut program = vec![
        op(LD_ABS_W, 0, 0, ARCH),
        // Another architecture: straight to the main program, which refuses it.
        op(JEQ_K, 0, if x32 { 5 } else { 3 }, native_arch),
        op(LD_ABS_W, 0, 0, NR),
    ];
    if x32 {
        program.push(op(JGE_K, 0, 1, X32_SYSCALL_BIT));
        program.push(op(RET_K, 0, 0, errno(libc::EPERM)));
    }
    program.push(op(JEQ_K, 0, 1, libc::SYS_clone3 as u32));
    program.push(op(RET_K, 0, 0, errno(libc::ENOSYS)));
    program
}

fn audit_arch() -> u32 {
    // linux/audit.h: EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    const LE64: u32 = 0x8000_0000 | 0x4000_0000;
    if cfg!(target_arch = "aarch64") {
        183 | LE64
    } else if cfg!(target_arch = "riscv64") {
        243 | LE64
    } else {
        62 | LE64
    }
}

fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for op in program {
        bytes.extend_from_slice(&op.code.to_ne_bytes());
        bytes.push(op.jt);
        bytes.push(op.jf);
        bytes.extend_from_slice(&op.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_compiles_to_whole_instructions_within_the_kernel_limit() {
        let bytes = program().unwrap();
        assert_eq!(bytes.len() % 8, 0);
        // BPF_MAXINSNS
        assert!(bytes.len() / 8 < 4096, "{} instructions", bytes.len() / 8);
    }

    #[test]
    fn the_prelude_jumps_land_on_the_main_program() {
        let prelude = prelude(audit_arch());
        // The architecture test's "false" branch skips exactly the rest of the prelude.
        assert_eq!(1 + 1 + prelude[1].jf as usize, prelude.len());
        let last = prelude.last().unwrap();
        assert_eq!(last.k, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    }
}
