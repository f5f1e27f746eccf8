#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bash completion of iovctl (cli/completion/iovctl.bash) as bash runs it: COMP_WORDS
# and COMP_CWORD set, _iovctl called, COMPREPLY read. Against a real iovd on a generated
# lab tree (with the fake kernel, so VFs and allocations work): commands and options as
# iovctl --help lists them, and live device addresses, pool names, allocation ids, VM
# names. TAP output.
# The zsh completion (cli/completion/_iovctl) is run too where zsh is installed, with
# zsh's compadd/compset/_files replaced by stubs that print what they are given.
# Usage: test-completion.sh IOVD IOVCTL IOV_FIXTURE IOV_FAKEKERNEL BASH_SCRIPT ZSH_SCRIPT
set -u
iovd=$1 iovctl=$2 fixture=$3 fakekernel=$4 script=$5 zsh_script=$6
dir=$(mktemp -d)
# shellcheck source=tests/daemon/iovd-on-tree.sh
. "$(dirname "$0")/iovd-on-tree.sh"

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; }

# Complete the last argument: complete WORD... (the first word is the iovctl to run).
complete_words() {
        COMP_WORDS=("$iovctl" "$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _iovctl
        printf '%s\n' "${COMPREPLY[@]}" | sort
}
# check NAME EXPECTED(one per line) WORD...: the candidates are exactly EXPECTED.
check() {
        local name=$1 expected got
        expected=$(printf '%s\n' "$2" | sed '/^$/d' | sort)
        shift 2
        got=$(complete_words "$@" | sed '/^$/d')
        if [ "$got" = "$expected" ]; then
                ok "$name"
        else
                notok "$name"
                echo "# completing: iovctl $*"
                echo "# expected: $(echo $expected)"
                echo "# got:      $(echo $got)"
        fi
}

# shellcheck source=/dev/null
source "$script" || bail "cannot source $script"
declare -F _iovctl >/dev/null || bail "$script defines no _iovctl"

iovd_on_tree

echo "1..21"

# Commands: the first words of what iovctl --help lists; "vm" completes to its
# subcommands. Derived from the help, so a new command is expected here too.
help_commands=$("$iovctl" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 {print $1}' | sort -u)
check "commands are iovctl --help's ($(echo $help_commands | wc -w))" "$help_commands" ""
vm_commands=$("$iovctl" --help | awk '$1 == "vm" {print $2}')
check "vm subcommands" "$vm_commands" vm ""
check "a command prefix" "$(printf 'pool\npools')" po
check "no __complete in the candidates" "" __

# Options: the command's (from its --help) and the global ones.
options() { "$iovctl" "$@" --help | grep -o '^  [- a-z,]*--[a-z0-9-]*' | grep -o -- '--[a-z0-9-]*'; }
check "devices options are its --help's" "$(options devices)" devices --
check "an option prefix" "--physfn" devices --ph
check "global options before the command" "$("$iovctl" --help | sed -n '/^Options:/,/^$/p' |
        grep -o '^  [- a-z,]*--[a-z0-9-]*' | grep -o -- '--[a-z0-9-]*')" --
check "--sriov values" "$(printf 'none\npf\nvf')" devices --sriov ""

# Live values from the daemon.
"$iovctl" sriov 0000:01:00.0 2 >/dev/null || bail "cannot create VFs"
addresses=$("$iovctl" devices | awk 'NR > 1 {print $1}')
[ "$(echo "$addresses" | wc -l)" -ge 10 ] || bail "devices: $addresses"
check "device addresses ($(echo "$addresses" | wc -l))" "$addresses" device ""
check "device addresses by prefix" "$(printf '0000:01:00.0\n0000:01:00.1\n0000:01:00.2')" \
        device 0000:01
check "sriov offers only PFs" "0000:01:00.0" sriov ""
"$iovctl" pool create nvme-vfs --physfn 0000:01:00.0 >/dev/null || bail "pool create"
"$iovctl" pool create nic --class 020000 >/dev/null || bail "pool create"
check "pool names" "$(printf 'nic\nnvme-vfs')" pool show ""
check "--pool=PREFIX as bash splits it" "nvme-vfs" alloc --pool = nv
id=$("$iovctl" --json alloc --owner t --pool nvme-vfs | sed -n 's/^ *"id": *"\(a-[0-9a-f]*\)".*/\1/p')
[ -n "$id" ] || bail "alloc gave no id"
check "allocation ids" "$id" release ""
check "alloc is also a group: set-owner" "set-owner" alloc ""
check "allocation ids for alloc set-owner" "$id" alloc set-owner ""
touch "$dir/kernel.img"
"$iovctl" vm create demo --kernel "$dir/kernel.img" >/dev/null || bail "vm create"
vm_id=$("$iovctl" vm list | awk '$2 == "demo" {print $1}')
check "VM names and ids" "$(printf 'demo\n%s' "$vm_id")" vm start ""
check "file names for --kernel" "$dir/kernel.img" vm create --kernel "$dir/kernel.i"

# No daemon at --socket: no live values, and quickly.
start=$(date +%s)
check "unreachable daemon: no candidates" "" --socket "$dir/none.sock" device ""
[ $(($(date +%s) - start)) -le 5 ] || echo "# completing took $(($(date +%s) - start)) s"

# zsh: the same helper behind _iovctl.
zsh_complete() {
        zsh -f -c '
compadd() { [[ $1 == -a ]] && print -l -- "${(@P)2}" }
compset() { [[ $1 == -P ]] && PREFIX=${PREFIX#*=} }
_files() { print "files:$PREFIX" }
script=$1; shift
words=("$@"); CURRENT=$#; PREFIX=${words[-1]}
source "$script"' zsh "$zsh_script" "$iovctl" "$@" | sort
}
if ! command -v zsh >/dev/null 2>&1; then
        ok "zsh: device addresses # SKIP zsh is not installed"
        ok "zsh: --sriov=PREFIX # SKIP zsh is not installed"
else
        got=$(zsh_complete device 0000:01)
        expected=$(printf '0000:01:00.0\n0000:01:00.1\n0000:01:00.2')
        if [ "$got" = "$expected" ]; then ok "zsh: device addresses"; else
                notok "zsh: device addresses"; echo "# got: $(echo $got)"; fi
        got=$(zsh_complete devices --sriov=v)
        if [ "$got" = vf ]; then ok "zsh: --sriov=PREFIX"; else
                notok "zsh: --sriov=PREFIX"; echo "# got: $(echo $got)"; fi
fi
