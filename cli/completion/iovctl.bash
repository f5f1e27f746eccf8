# bash completion for iovctl(1)                                   -*- shell-script -*-
# SPDX-License-Identifier: MIT
#
# Everything comes from iovctl itself, through its hidden command
# "iovctl __complete CWORD WORD..." (cli/complete.c): commands and options from its
# command tables, so new commands complete without changing this file, and live values
# (device addresses, pool names, VM names and ids, allocation and IOMMU group ids) from
# the iovd that the command line being typed talks to (--socket, --url, IOVD_SOCKET).
# The helper prints "files" (complete file names) or "words" and the candidates.

_iovctl()
{
        local cmd=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
        local -a words=()
        local i cword=0 out kind

        # The iovctl being completed when it is given as a path (build/cli/iovctl).
        [[ $cmd == */* && -x $cmd ]] || cmd=iovctl

        # Bash splits "--pool=gp" at "=" (COMP_WORDBREAKS): give iovctl the word whole.
        for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
                if ((${#words[@]} > 0)) &&
                        [[ ${COMP_WORDS[i]} == "=" || ${COMP_WORDS[i - 1]} == "=" ]]; then
                        words[-1]+=${COMP_WORDS[i]}
                else
                        words+=("${COMP_WORDS[i]}")
                fi
                ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
        done
        ((COMP_CWORD >= ${#COMP_WORDS[@]})) && cword=${#words[@]}

        # What readline replaces: the text after "=" when bash split there.
        [[ $cur == "=" ]] && cur=""
        [[ $cur == --*=* ]] && cur=${cur#*=}

        out=$("$cmd" __complete "$cword" "${words[@]}" 2>/dev/null) || return 0
        kind=${out%%$'\n'*}
        if [[ $kind == files ]]; then
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        elif [[ $kind == words && $out == *$'\n'* ]]; then
                mapfile -t COMPREPLY <<<"${out#*$'\n'}"
        else
                COMPREPLY=()
        fi
        # Without "=" in COMP_WORDBREAKS the whole "--pool=gp" is replaced.
        if [[ ${COMP_WORDS[COMP_CWORD]} == --*=* ]]; then
                COMPREPLY=("${COMPREPLY[@]/#/${COMP_WORDS[COMP_CWORD]%%=*}=}")
        fi
        return 0
}
complete -F _iovctl iovctl
