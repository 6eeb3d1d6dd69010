#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Run Google's packetdrill TCP scripts against Mustang (libmustang-sim).

  run.py --root ../shared/packetdrill --adapter libmustang-packetdrill.so \
         --build BUILDDIR --expect passing.txt --exclude excluded.txt [SCRIPT...]

1. Builds packetdrill from the snapshot (gtests/net/packetdrill) in a copy
   under BUILDDIR (needs make, bison, flex); exits 77 when the snapshot, the
   adapter or the tools are missing.
2. For every script under gtests/net/tcp/ not in excluded.txt: copies it
   into BUILDDIR/scripts/ with its shell commands (`...`) replaced by
   `true`. The sysctls those commands set (defaults.sh, set_sysctls.py,
   sysctl -q) are translated into the adapter's so_flags; a command it
   cannot translate fails the script (nothing ever runs on the host).
3. Runs packetdrill in shared-object mode with the adapter (virtual clock),
   one line per script, then "N passed, M failed, K excluded".

Exit status: 1 when a script in passing.txt fails (a regression) or the
lists are inconsistent, else 0. Scripts that pass but are not listed are
reported so the list can grow (--update rewrites it).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

SKIP = 77
SCRIPT_TIMEOUT_S = 30

PD_ARGS = [
    '--ip_version=ipv4', '--local_ip=192.168.0.1', '--gateway_ip=192.168.0.1',
    '--netmask_ip=255.255.0.0', '--remote_ip=192.0.2.1',
    '-D', 'TFO_COOKIE=3021b9d889017eeb', '-D', 'CODE=host_unreachable',
    '-D', 'CMSG_LEVEL_IP=SOL_IP', '-D', 'CMSG_TYPE_RECVERR=IP_RECVERR',
]

# Linux defaults the scripts assume (gtests/net/common/defaults.sh) that
# the sim does not already have, as adapter so_flags.
DEFAULT_FLAGS = {'rmem_max': str(15 * 1024 * 1024)}


def sysctl_flags(name, value):
    """so_flags for one sysctl, or None when the sim has no equivalent."""
    name = name.replace('/proc/sys/', '').replace('/', '.')
    value = value.strip().strip('"').strip("'")
    simple = {
        'net.ipv4.tcp_timestamps': 'timestamps',
        'net.ipv4.tcp_sack': 'sack',
        'net.ipv4.tcp_window_scaling': 'wscale',
        'net.ipv4.tcp_syncookies': 'syncookies',
    }
    if name in simple and value.isdigit():
        return {simple[name]: str(1 if int(value) else 0)}
    if name in ('net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'):
        parts = value.split()
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        if name.endswith('rmem'):
            return {'rmem_max': parts[2]}
        return {'wmem': parts[1]}
    if name == 'net.ipv4.tcp_congestion_control' and value in ('cubic', 'reno'):
        return {'cc': 'cubic' if value == 'cubic' else 'newreno'}
    # Values equal to defaults.sh's (what the sim already does) need nothing.
    same = {
        'net.ipv4.tcp_slow_start_after_idle': '0', 'net.ipv4.tcp_dsack': '1',
        'net.ipv4.tcp_fack': '0', 'net.ipv4.tcp_reordering': '3',
        'net.ipv4.tcp_ecn': '0', 'net.ipv4.tcp_syn_retries': '5',
    }
    if same.get(name) == value:
        return {}
    return None


def translate(command):
    """(so_flags dict, error) for one backquoted shell command."""
    flags = {}
    text = command.replace('\\\n', ' ').strip()
    if not text:
        return flags, None
    for line in text.split('\n'):
        line = line.strip()
        if not line:
            continue
        if re.fullmatch(r'(\.\./)+common/defaults\.sh', line):
            continue
        if re.fullmatch(r'/tmp/sysctl_restore_\$\{PPID\}\.sh', line):
            continue
        m = re.fullmatch(r'(\.\./)+common/set_sysctls\.py\s+(.*)', line)
        args = None
        if m:
            args = re.findall(r'(/proc/sys/\S+?)=("[^"]*"|\S+)', m.group(2))
        m2 = re.fullmatch(r'sysctl\s+-q\s+(.*)', line)
        if m2:
            args = re.findall(r'(net\.\S+?)=("[^"]*"|\S+)', m2.group(1))
        if not args:
            return None, 'shell command: ' + line
        for name, value in args:
            f = sysctl_flags(name, value)
            if f is None:
                return None, 'sysctl without a sim equivalent: %s=%s' % (name, value)
            flags.update(f)
    return flags, None


def prepare(src, dst):
    """Copy one script with its commands neutralised; (so_flags, error)."""
    with open(src) as f:
        text = f.read()
    flags = dict(DEFAULT_FLAGS)
    error = None

    def repl(m):
        nonlocal error
        f, err = translate(m.group(1))
        if err and not error:
            error = err
        if f:
            flags.update(f)
        return '`true' + '\n' * m.group(1).count('\n') + '`'

    text = re.sub(r'`([^`]*)`', repl, text)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, 'w') as f:
        f.write(text)
    return flags, error


def read_list(path, want_reason):
    entries = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split('#', 1)[0].rstrip() if not want_reason else line.rstrip()
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            parts = line.split(None, 1)
            if want_reason and (len(parts) < 2 or not parts[1].strip()):
                sys.exit('%s:%d: %s has no reason' % (path, n, parts[0]))
            entries[parts[0]] = parts[1].strip() if len(parts) > 1 else ''
    return entries


def build_packetdrill(root, build):
    src = os.path.join(root, 'gtests', 'net', 'packetdrill')
    dst = os.path.join(build, 'packetdrill-src')
    shutil.copytree(src, dst, dirs_exist_ok=True)
    mk = os.path.join(dst, 'Makefile')
    if not os.path.exists(mk):
        os.symlink('Makefile.Linux', mk)
    log = os.path.join(build, 'packetdrill-build.log')
    with open(log, 'w') as f:
        rc = subprocess.call(['make', '-C', dst, '-j2', 'packetdrill'], stdout=f,
                             stderr=subprocess.STDOUT)
    if rc:
        sys.exit('building packetdrill failed; see ' + log)
    return os.path.join(dst, 'packetdrill')


def first_error(out):
    for line in out.splitlines():
        if re.search(r'error|assert|fail|Timed out|timed out|mustang adapter', line, re.I):
            return line.strip()[:200]
    lines = [l for l in out.splitlines() if l.strip()]
    return lines[-1][:200] if lines else 'no output'


def run_one(pd, adapter, build, tcp_dir, rel, verbose):
    dst = os.path.join(build, 'scripts', 'tcp', rel)
    flags, error = prepare(os.path.join(tcp_dir, rel), dst)
    # The stubs the scripts' relative paths name must exist (they are
    # replaced by `true`, but packetdrill also checks nothing else).
    if error:
        return False, error
    so_flags = ','.join('%s=%s' % kv for kv in sorted(flags.items()))
    cmd = [pd, '--so_filename=' + adapter, '--so_flags=' + so_flags] + PD_ARGS + \
        [os.path.basename(dst)]
    env = dict(os.environ, LD_PRELOAD=adapter)
    try:
        p = subprocess.run(cmd, cwd=os.path.dirname(dst), env=env, capture_output=True,
                           text=True, timeout=SCRIPT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, 'timed out after %d s (wall)' % SCRIPT_TIMEOUT_S
    out = p.stdout + p.stderr
    if verbose:
        sys.stdout.write(out)
    if p.returncode == 0:
        return True, ''
    return False, first_error(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--root', required=True)
    ap.add_argument('--adapter', default='')
    ap.add_argument('--build', required=True)
    ap.add_argument('--expect', required=True)
    ap.add_argument('--exclude', required=True)
    ap.add_argument('--update', action='store_true', help='rewrite --expect with what passes')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('scripts', nargs='*', help='only these (relative to gtests/net/tcp)')
    a = ap.parse_args()

    tcp_dir = os.path.join(a.root, 'gtests', 'net', 'tcp')
    if not os.path.isdir(tcp_dir) or not a.adapter:
        print('SKIP: no packetdrill snapshot at %s' % a.root)
        return SKIP
    for tool in ('make', 'bison', 'flex', 'cc'):
        if not shutil.which(tool):
            print('SKIP: %s is not installed (scripts/lib.sh MST_PACKAGES)' % tool)
            return SKIP
    adapter = os.path.abspath(a.adapter)
    build = os.path.abspath(a.build)
    pd = build_packetdrill(a.root, build)

    excluded = read_list(a.exclude, True)
    expected = read_list(a.expect, False)
    scripts = sorted(os.path.relpath(os.path.join(d, f), tcp_dir)
                     for d, _, fs in os.walk(tcp_dir) for f in fs if f.endswith('.pkt'))
    bad = [s for s in list(excluded) + list(expected) if s not in scripts]
    bad += [s for s in expected if s in excluded]
    if bad:
        print('list error: unknown or both excluded and expected: ' + ' '.join(bad))
        return 1
    chosen = a.scripts or scripts

    passed, failed, regressions, new = [], [], [], []
    for rel in chosen:
        if rel in excluded:
            continue
        ok, why = run_one(pd, adapter, build, tcp_dir, rel, a.verbose)
        print('%s %s%s' % ('PASS' if ok else 'FAIL', rel, '' if ok else ': ' + why), flush=True)
        (passed if ok else failed).append(rel)
        if not ok and rel in expected:
            regressions.append(rel)
        if ok and rel not in expected:
            new.append(rel)
    n_excl = sum(1 for s in chosen if s in excluded)
    print('%d passed, %d failed, %d excluded' % (len(passed), len(failed), n_excl))
    if new:
        print('passing but not in %s: %s' % (os.path.basename(a.expect), ' '.join(new)))
    if a.update and not a.scripts:
        with open(a.expect, 'w') as f:
            f.write('# Scripts that pass (run.py --update); a failure of one fails the test.\n')
            for s in passed:
                f.write(s + '\n')
    if regressions:
        print('REGRESSION: %s' % ' '.join(regressions))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
