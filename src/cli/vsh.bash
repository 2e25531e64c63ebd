# bash completion for vsh: verbs, options and domain names, from `vsh complete`.
# Install: vsh completion bash > /etc/bash_completion.d/vsh
#      or: vsh completion bash > ~/.local/share/bash-completion/completions/vsh

_vsh_complete()
{
    local cur=${COMP_WORDS[COMP_CWORD]}
    local i=1
    local -a globals=()
    # vsh's own options come before the verb; the connection ones are passed on, so the
    # domains offered are those of the same URI.
    while [ "$i" -lt "$COMP_CWORD" ]; do
        case "${COMP_WORDS[i]}" in
            -c|--connect) globals+=(-c "${COMP_WORDS[i+1]}"); i=$((i + 2)) ;;
            --connect=*) globals+=("${COMP_WORDS[i]}"); i=$((i + 1)) ;;
            -d|--debug|-e|--escape|-k|-K|--keepalive-interval|--keepalive-count) i=$((i + 2)) ;;
            -*) i=$((i + 1)) ;;
            *) break ;;
        esac
    done
    if [ "$i" -gt "$COMP_CWORD" ]; then
        return 0
    fi
    local IFS=$'\n'
    local -a words=("${COMP_WORDS[@]:i:COMP_CWORD-i+1}")
    COMPREPLY=($("${COMP_WORDS[0]}" "${globals[@]}" -q complete -- "${words[@]}" 2>/dev/null))
    return 0
}

complete -o default -o nosort -F _vsh_complete vsh
